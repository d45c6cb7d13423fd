"""Which candidates to show: Memento's case-selection policy mu(c | s) ∝ exp(Q(s, c) / T).

At T = 0 the policy is greedy (rank by Q, every propensity 1). At T > 0 it samples k cases
without replacement (Plackett–Luce), and logs the probability with which each shown case was
picked at its rank, so that learning from these logs can correct for what the policy preferred.
"""

from __future__ import annotations

import numpy as np


def select(
    scores: np.ndarray, k: int, temperature: float, rng: np.random.Generator
) -> list[tuple[int, float]]:
    """Indices into `scores` in the order shown, each with its propensity."""
    k = min(k, len(scores))
    if temperature <= 0:
        order = np.argsort(-scores, kind="stable")[:k]
        return [(int(i), 1.0) for i in order]
    logits = (scores - scores.max()) / temperature
    weights = np.exp(logits)
    remaining = np.ones(len(scores), dtype=bool)
    chosen: list[tuple[int, float]] = []
    for _ in range(k):
        probabilities = np.where(remaining, weights, 0.0)
        probabilities /= probabilities.sum()
        pick = int(rng.choice(len(scores), p=probabilities))
        chosen.append((pick, float(probabilities[pick])))
        remaining[pick] = False
    return chosen
