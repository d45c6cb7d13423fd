"""Which candidates to show: Thompson sampling over each case's evidence, kept on topic.

Memento frames case selection as soft Q-learning, mu(c | s) ∝ exp(Q(s, c) / alpha). Here the
same idea runs as a contextual bandit that learns from each outcome at once:

- A case helps a query when it is about the same thing (`relevance`, from similarity) and its
  plan works. The plan's chance of working is a Beta posterior: the prior mean is what a trained
  model predicts for this query and case (0.5 without one), worth `PRIOR_WEIGHT` outcomes, and
  the case's own discounted outcomes (retriever.contract) update it.
- score = relevance x posterior mean: the estimate of P(help) that retrieval reports and that
  abstention compares with its threshold. With no outcomes every posterior is the same, so the
  order is the similarity order.
- Exploring: each case with outcomes draws its chance from its posterior instead of taking the
  mean (Thompson sampling); the top k of one draw are shown. A case that keeps failing has a
  posterior far below the others and is shown ever more rarely; an unrelated case cannot be
  promoted by a lucky draw, because relevance multiplies the draw. Propensities are each shown
  case's probability of being in the top k, estimated from `PROPENSITY_DRAWS` further draws, so
  the inclusion probabilities of all candidates sum to k.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PRIOR_WEIGHT = 2.0
"""How many outcomes the prior mean is worth: Beta(1, 1) when the prior mean is 0.5."""

RELEVANCE_WINDOW = float(__import__("os").environ.get("RW", 0.3))
"""Candidates more than this much less similar than the best one count as off topic."""

RELEVANCE_FLOOR = float(__import__("os").environ.get("RF", 0.3))
"""Below this cosine similarity nothing counts as on topic (MiniLM: unrelated texts score 0-0.3)."""

RELEVANCE_WIDTH = float(__import__("os").environ.get("RWD", 0.05))
"""How sharply relevance falls around its cut-off."""

PROPENSITY_DRAWS = 256


@dataclass
class Selection:
    """Indices into the candidates in the order shown, with what the policy knew."""

    order: list[int]
    propensities: list[float]  # of the shown cases, in order
    scores: np.ndarray  # (N,) relevance x posterior mean for every candidate
    inclusion: np.ndarray  # (N,) each candidate's probability of being shown; sums to k


def relevance(similarity: np.ndarray) -> np.ndarray:
    """(N,) in (0, 1): how on-topic each candidate is, relative to the best one and absolutely."""
    if not len(similarity):
        return np.zeros(0)
    cut = max(RELEVANCE_FLOOR, float(similarity.max()) - RELEVANCE_WINDOW)
    return 1.0 / (1.0 + np.exp(-(similarity - cut) / RELEVANCE_WIDTH))


def posterior(
    prior_mean: np.ndarray, successes: np.ndarray, trials: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Beta posterior parameters (alpha, beta) of each case's chance of helping."""
    alpha = PRIOR_WEIGHT * prior_mean + successes
    beta = PRIOR_WEIGHT * (1.0 - prior_mean) + (trials - successes)
    return alpha, np.maximum(beta, 1e-6)


def select(
    similarity: np.ndarray,
    prior_mean: np.ndarray,
    successes: np.ndarray,
    trials: np.ndarray,
    k: int,
    explore: bool,
    rng: np.random.Generator,
) -> Selection:
    """Pick k of the N candidates; see the module docstring."""
    n = len(similarity)
    k = min(k, n)
    rel = relevance(similarity)
    alpha, beta = posterior(prior_mean, successes, trials)
    mean = alpha / (alpha + beta)
    scores = rel * mean
    # A hair of similarity breaks exact ties (equal posteriors) in favour of the closer case.
    tie = 1e-9 * similarity
    if not explore or not np.any(trials > 0):
        order = np.argsort(-(scores + tie), kind="stable")[:k]
        inclusion = np.zeros(n)
        inclusion[order] = 1.0
        return Selection([int(i) for i in order], [1.0] * len(order), scores, inclusion)

    def draw(size: int) -> np.ndarray:  # (size, N) sampled scores
        theta = np.where(trials > 0, rng.beta(alpha, beta, size=(size, n)), mean)
        return rel * theta + tie

    shown = np.argsort(-draw(1)[0], kind="stable")[:k]
    top = np.argpartition(-draw(PROPENSITY_DRAWS), k - 1, axis=1)[:, :k]  # (draws, k)
    included = np.bincount(top.ravel(), minlength=n)
    # The draw that was shown is one more sample in which each shown case made the top k.
    propensities = [(included[i] + 1) / (PROPENSITY_DRAWS + 1) for i in shown]
    return Selection(
        [int(i) for i in shown], propensities, scores, included / PROPENSITY_DRAWS
    )

