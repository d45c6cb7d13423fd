"""Off-policy value of a prior model: would ranking with it have served better than what serves?

A held-out AUC on logged impressions cannot see the cases that were not shown, and it rewards a
model for sorting outcomes that no ranking decision depended on. The question a promotion must
answer is a policy's: had retrieval ranked with this model, would the cases it showed have
helped more often? Logged requests answer it off-policy:

- Each held-out request is re-ranked as retrieval would rank it with no evidence: its top
  `DEPTH` candidates by cosine over the namespace's cases, ranked by `policy.select` with the
  model's P(plan works) as the prior and no evidence (deterministic), the top k kept, k = the
  number of labelled cases in the request (with `used_case_ids` only the named cases are
  labelled, so k may be below the number shown). With no model P(plan works) is 0.5 for every
  case and the order is the similarity order.
- SNIPS (self-normalised inverse propensity scoring) over the logged labelled impressions:
  value = sum(1[case in target top k] * credit * reward / propensity)
          / sum(1[case in target top k] * credit / propensity).
  It is the credit-weighted mean reward of the cases the target policy would have shown, from
  the ones the logging policy happened to show; the self-normalisation keeps the variance low
  when propensities are small.
- A paired bootstrap over requests (same resamples for both policies) gives the difference's
  standard error and a 90 % interval. A candidate is promoted only when the interval's lower
  bound is above zero and the estimated gain is at least `MIN_GAIN`: nothing is promoted on
  noise, and a model only serves where it is measurably better than what serves now. (The
  gain floor matters when both policies pick the same cases in most requests: the bootstrap's
  lower bound then sits at exactly 0, and a model trained on coin flips came within a hair of
  promotion at +0.007.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from retriever.contract import PriorModel, TrainingSet
from retriever.policy import select

DEPTH = 50  # candidates re-ranked per request, as retrieval does
BOOTSTRAP = 200
LEVEL = 0.90
MIN_GAIN = 0.02  # in reward: a smaller estimated gain is not worth changing what serves
_NO_DRAWS = np.random.default_rng(0)  # select() draws nothing when it does not explore


@dataclass
class Requests:
    """Logged requests, each with the candidates retrieval would have ranked for it."""

    rows: list[np.ndarray]  # each request's rows in the TrainingSet
    candidates: list[np.ndarray]  # (<= DEPTH,) indices into the namespace's vectors
    similarity: list[np.ndarray]  # their cosine similarity to the request's query


def logged_requests(
    data: TrainingSet, vectors: tuple[np.ndarray, np.ndarray, np.ndarray], batch: int = 256
) -> Requests:
    """Group rows by request and fetch each request's top-DEPTH candidates by cosine."""
    groups: dict[str, list[int]] = {}
    for i, rid in enumerate(data.request_ids):
        groups.setdefault(rid, []).append(i)
    rows = [np.array(r) for r in groups.values()]
    tasks = vectors[1]
    queries = data.query_vecs[[r[0] for r in rows]] if rows else data.query_vecs[:0]
    candidates, similarity = [], []
    for start in range(0, len(rows), batch):
        sims = queries[start : start + batch] @ tasks.T  # (B, C)
        if tasks.shape[0] > DEPTH:
            top = np.argpartition(-sims, DEPTH, axis=1)[:, :DEPTH]  # order is select's business
        else:
            top = np.broadcast_to(np.arange(tasks.shape[0]), sims.shape)
        candidates.extend(top)
        similarity.extend(np.take_along_axis(sims, top, axis=1))
    return Requests(rows, candidates, similarity)


def in_top_k(
    data: TrainingSet,
    logged: Requests,
    r: int,
    vectors: tuple[np.ndarray, np.ndarray, np.ndarray],
    model: PriorModel | None,
) -> np.ndarray:
    """(rows of request r,) bool: which of its logged cases the target policy would show."""
    ids, tasks, plans = vectors
    rows, cand, similarity = logged.rows[r], logged.candidates[r], logged.similarity[r]
    q = data.query_vecs[rows[0]]
    plan_works = np.full(len(cand), 0.5) if model is None else model.predict(
        q, tasks[cand], plans[cand]
    )
    nothing = np.zeros(len(cand))  # the policy with no evidence: what the prior alone decides
    chosen = select(similarity, plan_works, nothing, nothing, len(rows), False, _NO_DRAWS)
    return np.isin(data.case_ids[rows], ids[cand[chosen.order]])


def snips_terms(
    data: TrainingSet,
    logged: Requests,
    vectors: tuple[np.ndarray, np.ndarray, np.ndarray],
    model: PriorModel | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per request (numerator, denominator) of the SNIPS estimate: (R,), (R,)."""
    weight = data.credits.astype(np.float64) / data.propensities.astype(np.float64)
    num, den = np.zeros(len(logged.rows)), np.zeros(len(logged.rows))
    for r, rows in enumerate(logged.rows):
        w = weight[rows] * in_top_k(data, logged, r, vectors, model)
        num[r], den[r] = (w * data.rewards[rows]).sum(), w.sum()
    return num, den


def snips(num: np.ndarray, den: np.ndarray) -> float | None:
    """The policy value from per-request terms; None when the target shows no logged case."""
    total = den.sum()
    return float(num.sum() / total) if total > 0 else None


def compare(
    candidate: PriorModel,
    incumbent: PriorModel | None,
    data: TrainingSet,
    vectors: tuple[np.ndarray, np.ndarray, np.ndarray],
    seed: int = 0,
) -> dict[str, Any]:
    """Both policies' values on `data` (held-out requests), their difference, and the gate."""
    logged = logged_requests(data, vectors)
    groups = logged.rows
    cand_num, cand_den = snips_terms(data, logged, vectors, candidate)
    inc_num, inc_den = snips_terms(data, logged, vectors, incumbent)
    value, incumbent_value = snips(cand_num, cand_den), snips(inc_num, inc_den)
    out: dict[str, Any] = {
        "value": value,
        "incumbent_value": incumbent_value,
        "diff": None,
        "diff_se": None,
        "ci": None,
        "n_requests": len(groups),
        # the share of requests where the policy would show a logged case: the estimate's base
        "support": float((cand_den > 0).mean()) if groups else 0.0,
        "incumbent_support": float((inc_den > 0).mean()) if groups else 0.0,
    }
    if value is None or incumbent_value is None:
        out |= {"promote": False, "gate": "no logged outcome where the policies would show"}
        return out
    # Paired bootstrap: resample requests, recompute both ratios on the same resample.
    rng = np.random.default_rng(seed)
    counts = np.stack(
        [np.bincount(rng.integers(0, len(groups), len(groups)), minlength=len(groups))
         for _ in range(BOOTSTRAP)]
    )  # (B, R) multiplicities  # fmt: skip
    with np.errstate(invalid="ignore", divide="ignore"):
        diffs = counts @ cand_num / (counts @ cand_den) - counts @ inc_num / (counts @ inc_den)
    diffs = diffs[np.isfinite(diffs)]
    tail = 100 * (1 - LEVEL) / 2
    lo, hi = np.percentile(diffs, [tail, 100 - tail])
    diff = value - incumbent_value
    promote = bool(lo > 0 and diff >= MIN_GAIN)
    out |= {
        "diff": diff,
        "diff_se": float(diffs.std(ddof=1)),
        "ci": [float(lo), float(hi)],
        "promote": promote,
        "gate": f"value {value:.3f} vs {incumbent_value:.3f}: diff {diff:+.3f},"
        f" {LEVEL:.0%} CI [{lo:+.3f}, {hi:+.3f}]: {'promoted' if promote else 'not measurably better'}",
    }
    return out
