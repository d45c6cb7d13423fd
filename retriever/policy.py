"""Which candidates to show: Thompson sampling over what each case's outcomes say.

Memento frames case selection as soft Q-learning, mu(c | s) ∝ exp(Q(s, c) / alpha). Here the
same idea runs as a contextual bandit that learns from each outcome at once:

- A case's chance of helping a query is a Beta posterior. Its prior mean is `prior_mean`: how
  relevant the case is (`relevance`, from similarity: unrelated cases are unlikely to help) times
  what a trained model predicts for its plan (0.5 without one). The prior is worth
  `PRIOR_WEIGHT` outcomes.
- The evidence is the case's own outcomes (`contextual_evidence`), each weighted by its credit,
  by recency (retriever.contract) and by how close the query it was shown for is to this one: a
  case that works for its own task says little about a different task that shares its words.
- score = posterior mean: the estimate of P(help) that retrieval reports and that abstention
  compares with its threshold. It only rises with successes and only falls with failures. With
  no outcomes the order is the similarity order.
- Exploring: each case with evidence draws its chance from its posterior instead of taking the
  mean (Thompson sampling); the top k of one draw are shown. A case that keeps failing is shown
  ever more rarely, and once the close cases have failed, less similar ones (a paraphrase whose
  prior is lower) get their turn. Propensities are each shown case's probability of being in the
  top k, estimated from `PROPENSITY_DRAWS` further draws, so inclusion probabilities sum to k.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from retriever.contract import recency_weights

PRIOR_WEIGHT = 2.0
"""How many outcomes the prior mean is worth: Beta(1, 1) when the prior mean is 0.5."""

RELEVANCE_FLOOR = 0.3
"""Below this cosine similarity (MiniLM) a case is unlikely to be on topic: unrelated texts score
0-0.3."""

RELEVANCE_MARGIN = 0.25
"""A case is half on topic when this much more similar than the median candidate: templated
tasks of other families sit near the median, paraphrases of the task well above it."""

RELEVANCE_WIDTH = 0.05

QUERY_KERNEL_MIDPOINT = 0.55
"""How close an earlier query must be for a case's outcome on it to count half for this one."""

QUERY_KERNEL_WIDTH = 0.05

PROPENSITY_DRAWS = 256


@dataclass
class Selection:
    """Indices into the candidates in the order shown, with what the policy knew."""

    order: list[int]
    propensities: list[float]  # of the shown cases, in order
    scores: np.ndarray  # (N,) posterior mean P(help) of every candidate
    inclusion: np.ndarray  # (N,) each candidate's probability of being shown; sums to k


def _sigmoid(x: np.ndarray) -> np.ndarray:
    result: np.ndarray = 1.0 / (1.0 + np.exp(-x))
    return result


def relevance(similarity: np.ndarray) -> np.ndarray:
    """(N,) in (0, 1): how likely each candidate is to be about the query's task, judged against
    the other candidates (most of which are not) and against an absolute floor."""
    similarity = np.asarray(similarity, dtype=np.float64)
    if not len(similarity):
        return similarity
    midpoint = max(RELEVANCE_FLOOR, float(np.median(similarity)) + RELEVANCE_MARGIN)
    return _sigmoid((similarity - midpoint) / RELEVANCE_WIDTH)


def prior_mean(similarity: np.ndarray, plan_works: np.ndarray | float = 0.5) -> np.ndarray:
    """P(help) before any outcome of the case: relevant, and its plan works."""
    return relevance(similarity) * plan_works


def contextual_evidence(
    query_vec: np.ndarray,
    history: list[tuple[np.ndarray, np.ndarray, np.ndarray] | None],
) -> tuple[np.ndarray, np.ndarray]:
    """(successes, trials) per candidate from its history (query vectors, rewards, credits,
    newest first; None when it has none), weighted by recency and by query closeness."""
    successes, trials = np.zeros(len(history)), np.zeros(len(history))
    for i, item in enumerate(history):
        if item is None:
            continue
        queries, rewards, credits = item
        closeness = _sigmoid((queries @ query_vec - QUERY_KERNEL_MIDPOINT) / QUERY_KERNEL_WIDTH)
        weights = recency_weights(credits) * closeness
        successes[i], trials[i] = float(weights @ rewards), float(weights.sum())
    return successes, trials


def posterior(
    prior: np.ndarray, successes: np.ndarray, trials: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Beta posterior parameters (alpha, beta) of each case's chance of helping."""
    prior = np.clip(prior, 1e-6, 1 - 1e-6)
    alpha = PRIOR_WEIGHT * prior + successes
    beta = PRIOR_WEIGHT * (1.0 - prior) + (trials - successes)
    return alpha, np.maximum(beta, 1e-6)


def select(
    similarity: np.ndarray,
    prior: np.ndarray,
    successes: np.ndarray,
    trials: np.ndarray,
    k: int,
    explore: bool,
    rng: np.random.Generator,
) -> Selection:
    """Pick k of the N candidates; see the module docstring."""
    n = len(similarity)
    k = min(k, n)
    alpha, beta = posterior(prior, successes, trials)
    scores = alpha / (alpha + beta)
    # A hair of similarity breaks exact ties (equal posteriors) in favour of the closer case.
    tie = 1e-9 * similarity
    if not explore or not np.any(trials > 0):
        order = np.argsort(-(scores + tie), kind="stable")[:k]
        inclusion = np.zeros(n)
        inclusion[order] = 1.0
        return Selection([int(i) for i in order], [1.0] * len(order), scores, inclusion)

    def draw(size: int) -> np.ndarray:  # (size, N) sampled scores
        theta = np.where(trials > 0, rng.beta(alpha, beta, size=(size, n)), scores)
        return theta + tie

    shown = np.argsort(-draw(1)[0], kind="stable")[:k]
    top = np.argpartition(-draw(PROPENSITY_DRAWS), k - 1, axis=1)[:, :k]  # (draws, k)
    included = np.bincount(top.ravel(), minlength=n)
    # The draw that was shown is one more sample in which each shown case made the top k.
    propensities = [(included[i] + 1) / (PROPENSITY_DRAWS + 1) for i in shown]
    return Selection(
        [int(i) for i in shown], propensities, scores, included / PROPENSITY_DRAWS
    )

