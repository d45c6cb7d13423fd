"""Serving: a trained head as numpy arrays behind `contract.PriorModel`. Torch-free.

The server ranks with this and never imports torch: loading torch costs ~2 s and ~300 MB in the
first `retrieve_cases` of a process, and 50 candidates are two small matmuls anyway (measured
1.4 ms on one torch thread, 27 ms on two on a busy 2-core machine). The arrays come from the
`<version>.npz` that `checkpoint.save_checkpoint` writes beside the torch checkpoint.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from retriever.versions import CheckpointError

ARRAYS = ("w1", "b1", "w2", "b2", "w_wide")
KERNEL_ARRAYS = ("memory_q", "memory_r", "kernel_temperature")  # absent before the query kernel


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    """GELU's tanh form. x * x * x, not x**3: numpy's power took 37 us for one retrieval's
    11 x 64 hidden units, the whole function now 4 (the head's forward 90 -> 58 us)."""
    return 0.5 * x * (1.0 + np.tanh(0.7978845608028654 * (x + 0.044715 * (x * x * x))))


def kernel_logit(similarity: np.ndarray, rewards: np.ndarray, temperature: float) -> np.ndarray:
    """model.kernel_logit in numpy: (B, M) cosines, (M,) outcomes -> (B,) logit of the
    Nadaraya-Watson mean outcome, clipped to [0.01, 0.99]; 0 with no kept request."""
    weights = np.exp((similarity - 1.0) / temperature)  # (B, M) in [0, 1]
    mean = np.clip((weights @ rewards + 0.5e-30) / (weights.sum(-1) + 1e-30), 0.01, 0.99)
    logit: np.ndarray = np.log(mean / (1.0 - mean))
    return logit


class HeadModel:
    """A frozen PriorHead; stateless, so safe to call from any thread."""

    def __init__(self, arrays: dict[str, np.ndarray], version: str) -> None:
        self.w1 = arrays["w1"].astype(np.float32)  # (F, H)
        self.b1 = arrays["b1"].astype(np.float32)  # (H,)
        self.w2 = arrays["w2"].astype(np.float32)  # (H,)
        self.b2 = float(arrays["b2"])  # the MLP's and the wide term's biases together
        # (3,) on [cos(q,t), cos(q,p), kernel]; a head saved before the kernel has 2, and no memory
        self.w_wide = np.zeros(3, np.float32)
        self.w_wide[: len(arrays["w_wide"])] = arrays["w_wide"]
        dim = (self.w1.shape[0] - 2) // 6
        self.memory_q = arrays.get("memory_q", np.zeros((0, dim))).astype(np.float32)  # (M, D)
        self.memory_r = arrays.get("memory_r", np.zeros(0)).astype(np.float32)  # (M,) outcomes
        self.temperature = float(arrays.get("kernel_temperature", 1.0))
        self.version = version

    def predict(
        self, query_vec: np.ndarray, case_vecs: np.ndarray, plan_vecs: np.ndarray
    ) -> np.ndarray:
        """(D,) or (N, D), (N, D), (N, D) -> (N,) P(help); the features are model.pair_features'."""
        t = np.asarray(case_vecs, dtype=np.float32)  # (N, D)
        p = np.asarray(plan_vecs, dtype=np.float32)  # (N, D)
        queries = np.asarray(query_vec, dtype=np.float32).reshape(-1, t.shape[1])  # (1 or N, D)
        # once per distinct query row: one query's N cases cost one (1, M) product, not N
        kernel = kernel_logit(queries @ self.memory_q.T, self.memory_r, self.temperature)
        q = np.broadcast_to(queries, t.shape)
        cos_t = np.einsum("nd,nd->n", q, t)[:, None]  # (N, 1)
        cos_p = np.einsum("nd,nd->n", q, p)[:, None]  # (N, 1)
        x = np.concatenate([q, t, p, q * t, q * p, np.abs(q - t), cos_t, cos_p], axis=1)
        hidden = gelu_tanh(x @ self.w1 + self.b1)  # (N, H)
        wide = x[:, -2:] @ self.w_wide[:2] + kernel * self.w_wide[2]  # (N,)
        logits = hidden @ self.w2 + wide + self.b2  # (N,)
        probs: np.ndarray = (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)
        return probs


def load_model(path: str | Path, version: str) -> HeadModel:
    """The head in `<version>.npz`; CheckpointError for anything that is not one."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in ARRAYS}
            arrays |= {name: npz[name] for name in KERNEL_ARRAYS if name in npz.files}
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"cannot read serving weights {path}: {exc}") from exc
    if (
        arrays["w1"].ndim != 2
        or arrays["w1"].shape[1] != arrays["w2"].shape[0]
        or len(arrays["w_wide"]) not in (2, 3)
        or arrays.get("memory_q", np.zeros((0, 0))).shape[0] != len(arrays.get("memory_r", []))
    ):
        raise CheckpointError(f"{path} does not hold a prior head's weights")
    return HeadModel(arrays, version)
