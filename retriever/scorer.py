"""The serving side: a trained head behind the `Scorer` protocol that retrieval calls.

Serving runs the head in numpy, not torch: 50 candidates are two small matmuls, and on a busy
2-core machine torch's thread pool spins against the encoder and the background retrain
(measured: 1.4 ms on one torch thread, 27 ms on two).
"""

from __future__ import annotations

from typing import Protocol, cast

import numpy as np
from torch import nn

from retriever.model import QScorer


class Scorer(Protocol):
    version: str

    def score(
        self, query_vec: np.ndarray, case_vecs: np.ndarray, case_stats: np.ndarray
    ) -> np.ndarray:
        """(D,), (N, D), (N, 3) -> (N,) estimates in [0, 1] that each case helps the query."""
        ...


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(0.7978845608028654 * (x + 0.044715 * x**3)))


class HeadScorer:
    """A frozen QScorer's weights as numpy arrays; stateless, so safe to call from any thread."""

    def __init__(self, model: QScorer, version: str) -> None:
        # mlp = Dropout, Linear, GELU, Dropout, Linear
        first, last = cast(nn.Linear, model.mlp[1]), cast(nn.Linear, model.mlp[4])
        self.w1 = first.weight.detach().numpy().T.copy()  # (F, H)
        self.b1 = first.bias.detach().numpy().copy()  # (H,)
        self.w2 = last.weight.detach().numpy()[0].copy()  # (H,)
        self.b2 = float(last.bias.detach().numpy()[0] + model.direct.bias.detach().numpy()[0])
        self.w_direct = model.direct_weight().detach().numpy().copy()  # (1 + S,) on [cos, stats]
        self.use_embeddings = model.config.use_embeddings
        self.version = version

    def score(
        self, query_vec: np.ndarray, case_vecs: np.ndarray, case_stats: np.ndarray
    ) -> np.ndarray:
        c = np.asarray(case_vecs, dtype=np.float32)  # (N, D)
        q = np.broadcast_to(
            np.asarray(query_vec, dtype=np.float32).reshape(1, -1), c.shape
        )  # (N, D)
        cos = np.einsum("nd,nd->n", q, c)[:, None]  # (N, 1)
        parts = [cos, np.asarray(case_stats, dtype=np.float32)]
        if self.use_embeddings:
            parts = [q, c, q * c, np.abs(q - c), *parts]
        x = np.concatenate(parts, axis=1)  # (N, F)
        hidden = _gelu_tanh(x @ self.w1 + self.b1)  # (N, H)
        logits = hidden @ self.w2 + x[:, -len(self.w_direct) :] @ self.w_direct + self.b2  # (N,)
        probs: np.ndarray = (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)
        return probs
