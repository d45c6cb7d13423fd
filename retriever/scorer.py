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


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    """GELU's tanh form. x * x * x, not x**3: numpy's power took 37 us for one retrieval's
    11 x 64 hidden units, the whole function now 4 (the head's forward 90 -> 58 us)."""
    return 0.5 * x * (1.0 + np.tanh(0.7978845608028654 * (x + 0.044715 * (x * x * x))))


class HeadModel:
    """A frozen PriorHead; stateless, so safe to call from any thread."""

    def __init__(self, arrays: dict[str, np.ndarray], version: str) -> None:
        self.w1 = arrays["w1"].astype(np.float32)  # (F, H)
        self.b1 = arrays["b1"].astype(np.float32)  # (H,)
        self.w2 = arrays["w2"].astype(np.float32)  # (H,)
        self.b2 = float(arrays["b2"])  # the MLP's and the wide term's biases together
        self.w_wide = arrays["w_wide"].astype(np.float32)  # (2,) on [cos(q,t), cos(q,p)]
        self.version = version

    def predict(
        self, query_vec: np.ndarray, case_vecs: np.ndarray, plan_vecs: np.ndarray
    ) -> np.ndarray:
        """(D,) or (N, D), (N, D), (N, D) -> (N,) P(help); the features are model.pair_features'."""
        t = np.asarray(case_vecs, dtype=np.float32)  # (N, D)
        p = np.asarray(plan_vecs, dtype=np.float32)  # (N, D)
        q = np.broadcast_to(np.asarray(query_vec, dtype=np.float32).reshape(-1, t.shape[1]), t.shape)
        cos_t = np.einsum("nd,nd->n", q, t)[:, None]  # (N, 1)
        cos_p = np.einsum("nd,nd->n", q, p)[:, None]  # (N, 1)
        x = np.concatenate([q, t, p, q * t, q * p, np.abs(q - t), cos_t, cos_p], axis=1)
        hidden = gelu_tanh(x @ self.w1 + self.b1)  # (N, H)
        logits = hidden @ self.w2 + x[:, -2:] @ self.w_wide + self.b2  # (N,)
        probs: np.ndarray = (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)
        return probs


def load_model(path: str | Path, version: str) -> HeadModel:
    """The head in `<version>.npz`; CheckpointError for anything that is not one."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in ARRAYS}
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"cannot read serving weights {path}: {exc}") from exc
    if arrays["w1"].ndim != 2 or arrays["w1"].shape[1] != arrays["w2"].shape[0]:
        raise CheckpointError(f"{path} does not hold a prior head's weights")
    return HeadModel(arrays, version)
