"""Which candidates to show: Thompson sampling over what each case's outcomes say.

Memento frames case selection as soft Q-learning, mu(c | s) ∝ exp(Q(s, c) / alpha). Here the
same idea runs as a contextual bandit that learns from each outcome at once:

- A case's chance of helping a query is a Beta posterior. Its prior mean is what a trained
  model predicts for the case's plan (0.5 without one), worth `PRIOR_WEIGHT` outcomes, drawn
  toward 0.5 by the chance that what works changed within the candidates' outcomes (the prior
  was learnt from that past; memento_mcp.memory.Memory._rank).
- The evidence is the case's own latest outcomes (`contextual_evidence`), each weighted by its
  credit, by how close the query it was shown for is to this one (a case that works for its own
  task says little about a different task that shares its words), and by the chance that it is
  newer than the last change of what works for the query (retriever.contract.since_change): when
  the leader starts failing beyond its record, its old successes and its rivals' old failures
  stop counting, and the rivals are explored again.
- score = relevance x posterior mean: the estimate of P(help) that retrieval reports and that
  abstention compares with its threshold. `relevance` (how far a case's similarity stands out
  from the other candidates') keeps unrelated cases out. The score only rises with successes and only falls with
  failures; with no outcomes the order is the similarity order.
- Exploring: each case with evidence draws its chance from its posterior instead of taking the
  mean (Thompson sampling); the top k of one draw are shown. A case that keeps failing is shown
  ever more rarely; an unrelated case cannot be promoted by a lucky draw, because relevance
  multiplies the draw. Propensities are each shown case's probability of being in the top k,
  estimated from `PROPENSITY_DRAWS` further draws, so inclusion probabilities sum to k.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from retriever.contract import History, since_change

PRIOR_WEIGHT = 2.0
"""How many outcomes the prior mean is worth: Beta(1, 1) when the prior mean is 0.5."""

RELEVANCE_FLOOR = 0.3
"""Below this cosine similarity nothing counts as on topic (MiniLM: unrelated texts score 0-0.3)."""

RELEVANCE_Z = 2.0
"""How many robust standard deviations above the candidates' median similarity a case must be to
count as half on topic. Most candidates are background (other tasks); the query's own task
stands out from them, whether as a near-duplicate or as a paraphrase (bench/scenarios.py: on-topic
cases 1.6-14, off-topic ones below 1.7 in 99 %)."""

RELEVANCE_Z_WIDTH = 0.3

BACKGROUND = (20, 0.15)
"""A pool smaller than 20 candidates is padded with unrelated ones (MiniLM similarity 0.15), so
that a small bank's few cases are judged against what unrelated text looks like."""

QUERY_KERNEL_MIDPOINT = 0.55
"""How close an earlier query must be for a case's outcome on it to count half for this one."""

QUERY_KERNEL_WIDTH = 0.05

SHARPNESS = 6.0
"""Thompson draws come from the posterior with its evidence counted this many times over (its
variance divided by about as much). Each case's evidence is short (at most contract.HISTORY
outcomes, cut at the last change), so that the mean follows change quickly; sharper draws stop
that short memory from turning into endless exploration of cases already known to be worse.
In process, 20 seeds (two sets of 10), median share of the oracle at 3 -> 6: k4_unused
0.88/0.88 -> 0.90/0.89, namespaces 0.94/0.89 -> 0.94/0.91, generalisation 0.97/0.95 ->
0.97/0.97, drift 0.89/0.91 -> 0.90/0.91. At 10, k4_unused reached 0.93 but namespaces fell
to 0.87 and drift's worst seed to 0.65: too few draws leave a neighbourhood that has seen
only a few outcomes, or has just changed, locked on an early leader."""

PROPENSITY_DRAWS = 128
"""Further draws that estimate the shown cases' propensities. The relative standard error of a
propensity p is sqrt((1 - p) / (p x 129)): 8.8 % at p = 0.5, 26 % at 0.1, below which training
clips 1/p anyway (retriever.train). 256 draws halve the variance and cost every explored
retrieval about 0.06 ms more (in process, bench/load.py's mix on the starter bank)."""

EVIDENCE_RELEVANCE = 0.01
"""Candidates less relevant than this are ranked without reading their outcomes: their score
stays below it whatever their record says, so it can only reorder cases that nobody would be
shown ahead of a relevant one. Of the ~80 candidates of a starter-bank query about 11 pass (p95
21), so ranking reads a handful of histories instead of every candidate's (bench/load.py)."""


@dataclass
class Selection:
    """Indices into the candidates in the order shown, with what the policy knew."""

    order: list[int]
    propensities: list[float]  # of the shown cases, in order
    scores: np.ndarray  # (N,) relevance x posterior mean: the estimated P(help) of each candidate
    inclusion: np.ndarray  # (N,) each candidate's probability of being shown; sums to k


def _sigmoid(x: np.ndarray) -> np.ndarray:
    result: np.ndarray = 1.0 / (1.0 + np.exp(-x))
    return result


def relevance(similarity: np.ndarray) -> np.ndarray:
    """(N,) in (0, 1): how clearly each candidate stands out from the background of candidates."""
    similarity = np.asarray(similarity, dtype=np.float64)
    size, unrelated = BACKGROUND
    pool = np.concatenate([similarity, np.full(max(0, size - len(similarity)), unrelated)])
    center = _median(pool)
    spread = max(1.4826 * _median(np.abs(pool - center)), 0.05)
    standing = (similarity - center) / spread
    stands_out = _sigmoid((standing - RELEVANCE_Z) / RELEVANCE_Z_WIDTH)
    above_floor = _sigmoid((similarity - RELEVANCE_FLOOR) / 0.05)
    result: np.ndarray = stands_out * above_floor
    return result


def _median(x: np.ndarray) -> float:
    """np.median without its overhead: 1.4 us instead of 7 for ~90 candidates, on every retrieval."""
    half = len(x) // 2
    if len(x) % 2:
        return float(np.partition(x, half)[half])
    low, high = np.partition(x, [half - 1, half])[half - 1 : half + 1]
    return 0.5 * float(low + high)


def worth_weighing(rel: np.ndarray) -> np.ndarray:
    """Indices of the candidates whose outcomes can change what is shown, by their relevance."""
    return np.flatnonzero(rel >= EVIDENCE_RELEVANCE)


def contextual_evidence(
    query_vec: np.ndarray, history: History, n: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """(successes, trials) of each of n candidates from its history, each showing weighted by
    its credit, by how close the query it answered is to this one, and by the chance that no
    change came after it; and the chance that nothing changed for queries like this one.

    Whether something changed is judged on every showing at its credit, however close its query:
    a leader's failures on related queries say that its plan stopped working as plainly as
    failures on this very query do. Discounted by closeness too, three failures on queries at
    cosine 0.58 counted as two and the leader kept its rank for 6-8 failures (bench/scenarios.py
    drift, 24 seeds: median share of the oracle 0.94 -> 0.98, worst seed 0.64 -> 0.80).

    The last value sets how much the learnt priors still count (memento_mcp.memory.Memory._rank),
    so there a change counts as far as the queries it was seen on are close to this one. Taken
    over every candidate's showings alike, a new topic's priors faded with each change (or mere
    chance of one, among many outcomes) on other topics whose cases were candidates too: plans
    of the kind that had worked elsewhere started at 0.52 against the other kind's 0.48, where
    the plan prior said 0.8 against 0.55 (generalisation, 32 seeds: seeds under 0.9 of the
    oracle 8 -> 3, mean share 0.943 -> 0.959; namespaces: seeds under 0.9 3 -> 0)."""
    closeness = _sigmoid((history.queries @ query_vec - QUERY_KERNEL_MIDPOINT) / QUERY_KERNEL_WIDTH)
    unchanged = since_change(history.ids, history.steps)
    weights = history.credits * closeness * unchanged
    successes = np.bincount(history.owner, weights * history.rewards, minlength=n)
    trials = np.bincount(history.owner, weights, minlength=n)
    changed_here = closeness * (1.0 - unchanged)
    return successes, trials, 1.0 - float(changed_here.max(initial=0.0))


def posterior(
    prior: np.ndarray, successes: np.ndarray, trials: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Beta posterior parameters (alpha, beta) of each case's chance of helping."""
    prior = np.minimum(np.maximum(prior, 1e-6), 1 - 1e-6)  # np.clip costs twice as much
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
    rel: np.ndarray | None = None,
) -> Selection:
    """Pick k of the N candidates; see the module docstring. `rel`: relevance(similarity),
    when the caller has already computed it."""
    n = len(similarity)
    k = min(k, n)
    rel = relevance(similarity) if rel is None else rel
    alpha, beta = posterior(prior, successes, trials)
    scores = rel * (alpha / (alpha + beta))
    # A hair of similarity breaks exact ties (equal posteriors) in favour of the closer case.
    ranked = scores + 1e-9 * similarity
    tried = np.flatnonzero(trials)  # the cases with evidence (trials are never negative)
    if not explore or not len(tried):
        order = np.argsort(-ranked, kind="stable")[:k]
        inclusion = np.zeros(n)
        inclusion[order] = 1.0
        return Selection(order.tolist(), [1.0] * len(order), scores, inclusion)

    # Only cases with evidence are drawn; the others keep their mean, so of those only the k
    # best can ever make a draw's top k. Drawing over just these columns is exact, and cheap.
    untried = ranked.copy()
    untried[tried] = -np.inf
    fixed = np.argsort(-untried, kind="stable")[: min(k, n - len(tried))]
    columns = np.concatenate([tried, fixed])
    # (draws, columns) sampled scores; the first row is the draw that is shown
    drawn = np.empty((1 + PROPENSITY_DRAWS, len(columns)))
    theta = rng.beta(
        SHARPNESS * alpha[tried], SHARPNESS * beta[tried], size=(1 + PROPENSITY_DRAWS, len(tried))
    )
    drawn[:, : len(tried)] = rel[tried] * theta + 1e-9 * similarity[tried]
    drawn[:, len(tried) :] = ranked[fixed]
    shown = columns[np.argsort(-drawn[0], kind="stable")[:k]]
    top = np.argpartition(-drawn[1:], k - 1, axis=1)[:, :k]  # (draws, k)
    included = np.bincount(columns[top].ravel(), minlength=n)
    # The draw that was shown is one more sample in which each shown case made the top k.
    propensities = (included[shown] + 1) / (PROPENSITY_DRAWS + 1)
    return Selection(shown.tolist(), propensities.tolist(), scores, included / PROPENSITY_DRAWS)
