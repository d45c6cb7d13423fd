"""The learned retriever's contract with the case bank and the server. Torch-free.

Everything that both sides must agree on lives here and nowhere else: the arrays a model trains
on (`TrainingSet`), what a bank offers the retriever (`Bank`), what a serving model offers
retrieval (`PriorModel`), and the two rules that turn outcomes into evidence about the cases
shown: how the credit is shared (`credit_shares`) and when old evidence stops counting
(`since_change`).

The memento_mcp side imports this module; nothing here imports memento_mcp or torch, so the
server can rank with a trained model without loading torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

CHANGE_HAZARD = 0.1
"""Prior chance that what works for a query changed between two outcomes of its candidates.

`since_change` counts an outcome with the posterior chance that no change came after it. Larger
finds a change sooner and forgets more often for nothing. bench/scenarios.py through the MCP
tools, 8 seeds, median share of the oracle (worst seed) at 0.05 / 0.1 / 0.2: drift 0.89 (0.79)
and 0.91 (0.84) / 0.94 (0.90) and 0.92 (0.87) / 0.93 (0.78); k4_used, where nothing changes,
0.98 (0.97) and 0.98 (0.94) / 0.97 (0.91) and 0.98 (0.94) / 0.93 (0.89); k4_unused 0.93 (0.86) /
0.95 (0.87) / 0.94 (0.85). (0.05 had replaced a per-case half-life of 4 outcomes: drift 0.82.)"""

HISTORY = 16
"""Latest labelled showings of a case that ranking reads: its evidence is a sliding window of its
16 latest outcomes (cut at the last change, `since_change`); reading more costs every retrieval
(bench/load.py) and would let a case's distant past outweigh its recent outcomes."""

MIN_CREDIT = 0.1
"""Showings that carried less of an outcome than this (below the top case nobody named: 0.06 at
rank 2, 0.004 at rank 4) are left out of the history. They are the followed case's outcome more
than theirs, and they took its slots: sixteen slivers of the leader's successes pushed a rival's
own failure out of its window and raised it above an untried case, so it was followed and failed
again (bench/scenarios.py k4_unused, 16 seeds: 0.94 (0.78) of the oracle at 0.05, 0.98 (0.90)
at 0.1). The plan prior leaves them out too; the trained model (retriever.train) learns from
them, weighted by their credit."""


@dataclass
class History:
    """Candidates' latest labelled showings as flat arrays: rows grouped by candidate (its index
    in the list asked for), newest first within each."""

    owner: np.ndarray  # (M,) int: which candidate the row belongs to
    queries: np.ndarray  # (M, D) float32: the query each showing answered
    rewards: np.ndarray  # (M,) float
    credits: np.ndarray  # (M,) float: the share of its outcome the showing carried
    ids: np.ndarray  # (M,) int: the showings' impression ids (a later showing, a larger id)
    steps: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """(M,) `change_steps` of the rows, computed here unless given: they depend on each case's
    own rows only, so a kept history keeps them (retriever.histories)."""

    def __post_init__(self) -> None:
        if len(self.steps) != len(self.owner):
            self.steps = change_steps(self.owner, self.rewards, self.credits)


def since_change(ids: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Each outcome's posterior chance of being newer than the last change of its neighbourhood.

    The candidates of one query are a neighbourhood: when what works for the query changes, it
    changes for all of them at once (a plan that worked stops working, another one starts to).
    Model: the candidates' outcomes, ordered by showing (`ids`), hold at most one change point,
    with prior odds CHANGE_HAZARD at each gap between two of them; before and after it each case
    has its own chance of success (Beta(1, 1) a priori each time; each outcome counts as the
    fraction of an observation its credit gives). A leader that succeeded 10 times and has now failed 3
    times in a row makes a change likely, and then every case's outcomes from before it stop
    counting, the rivals' old failures too: they are explored again (a rival that turned good
    is not held back by failures it had before the change, which nothing newer of its own could
    outweigh, since it was not followed). While the leader keeps its record, no split explains
    the outcomes better than none, and the rivals' old failures keep them where they are: a
    world that does not change is not explored again for nothing, as a fixed discount would.

    `steps`: each row's `change_steps` (`History.steps`); the result is in (0, 1], 1 for the
    newest row. Only the part that mixes the cases' rows runs here, on every retrieval.
    """
    n = len(ids)
    if n < 2:
        return np.ones(n)
    order = np.argsort(-ids, kind="stable")  # the neighbourhood's rows, newest first
    split = np.cumsum(steps[order])  # log Bayes factor of a change just after each row
    odds = np.exp(np.minimum(split, 50.0))
    odds *= CHANGE_HAZARD / (1.0 - CHANGE_HAZARD)
    odds[-1] = 0.0  # a change before the oldest row is no change
    later = np.cumsum(odds[::-1])[::-1]  # a row counts if the change, if any, is older
    keep = np.empty(n)
    keep[order] = (1.0 + later) / (1.0 + later[0])
    return keep


def change_steps(owner: np.ndarray, rewards: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """What each row adds to the log Bayes factor of a change just after it (`since_change`),
    as its own case sees it: summed over a neighbourhood's rows from the newest, they give the
    factor of a change at each point. A case's steps depend on its own rows only, so they are
    computed once per history read, not on every retrieval.

    Rows grouped by owner, newest first (`History`); `weights` count each outcome as a fraction
    of an observation.
    """
    n = len(owner)
    if n == 0:
        return np.zeros(0)
    first = np.empty(n, dtype=bool)
    first[0] = True
    np.not_equal(owner[1:], owner[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    sizes = np.diff(starts, append=n)
    ends = starts + sizes - 1
    wins = weights * rewards
    losses = weights - wins
    new_w = np.cumsum(wins)  # the case's rows through this one (newest first)
    new_w -= np.repeat(new_w[starts] - wins[starts], sizes)
    new_l = np.cumsum(losses)
    new_l -= np.repeat(new_l[starts] - losses[starts], sizes)
    all_w, all_l = np.repeat(new_w[ends], sizes), np.repeat(new_l[ends], sizes)
    # log Bayes factor of "a change just before this case's rows through this one" for the case:
    # B(1 + new) B(1 + older) / B(1 + all) for the Beta function B, as 9 log-gammas at once
    counts = np.stack([new_w, new_l, new_w + new_l, all_w - new_w, all_l - new_l,
                       all_w - new_w + all_l - new_l, all_w, all_l, all_w + all_l])  # fmt: skip
    counts += _LOG_BETA_SHIFTS
    term = _LOG_BETA_SIGNS @ _log_gamma(counts)
    term[ends] = 0.0  # all of the case's rows after the change: it says nothing about one
    step = term.copy()
    step[1:] -= term[:-1]
    step[starts] = term[starts]
    return step


def _log_gamma(x: np.ndarray) -> np.ndarray:
    """log Γ(x) for x >= 1, to 1e-9: Γ(x) = Γ(x + 6) / (x (x+1) ... (x+5)), and Stirling's
    series from x + 6 >= 7. Numpy has no log-gamma: math.lgamma element by element took 155 us
    for the 9 x 176 counts of a history of 176 rows (change_steps and since_change, then one
    function, took 171 us), this 18 (53)."""
    shifted = x + 6.0
    product = x * (x + 1.0) * (x + 2.0) * (x + 3.0) * (x + 4.0) * (x + 5.0)
    inverse = 1.0 / shifted
    square = inverse * inverse
    series = inverse * (1 / 12 - square * (1 / 360 - square * (1 / 1260 - square / 1680)))
    result: np.ndarray = (
        (shifted - 0.5) * np.log(shifted) - shifted + _HALF_LOG_TAU + series - np.log(product)
    )
    return result


_HALF_LOG_TAU = 0.5 * math.log(2 * math.pi)
_LOG_BETA_SHIFTS = np.array([[1.0], [1.0], [2.0], [1.0], [1.0], [2.0], [1.0], [1.0], [2.0]])
_LOG_BETA_SIGNS = np.array([1.0, 1.0, -1.0, 1.0, 1.0, -1.0, -1.0, -1.0, 1.0])


def credit_shares(shown: list[int], used: list[int] | None) -> dict[int, float]:
    """How much of one outcome each shown case (in rank order) gets.

    Named cases (`used_case_ids`) each get a whole observation: the agent says it followed them.
    Without names the cases share one observation in proportion to 1/rank⁴, since an agent reads
    the first case first and mostly follows it (k=4: 0.92, 0.06, 0.01, 0.004); the shares sum to
    1 so that a k=4 answer teaches no more than a k=1 answer does. Larger shares for the lower
    ranks let the top case's successes leak to cases nobody followed, which then win a draw and
    fail (bench/scenarios.py k4_unused: 0.78 of the oracle with 1/rank³, 0.89 with 1/rank⁴).
    """
    if used is not None:
        return {case_id: 1.0 for case_id in shown if case_id in used}
    weights = [1.0 / rank**4 for rank in range(1, len(shown) + 1)]
    total = sum(weights)
    return {case_id: w / total for case_id, w in zip(shown, weights, strict=True)}


@dataclass
class Showings:
    """Labelled showings of one namespace in the order they were labelled (retriever.plan_prior)."""

    last_id: int  # the newest outcome among them: the next read starts after it
    case_ids: np.ndarray  # (M,) int64
    query_vecs: np.ndarray  # (M, D) float32: the query each showing answered
    case_vecs: np.ndarray  # (M, D) float32: the shown case's task
    plan_vecs: np.ndarray  # (M, D) float32: the shown case's plan (its task until embedded)
    rewards: np.ndarray  # (M,)
    credits: np.ndarray  # (M,)

    def __len__(self) -> int:
        return len(self.rewards)


@dataclass
class TrainingSet:
    """One row per labelled impression: a case shown for a query, and how that request ended."""

    impression_ids: np.ndarray  # (N,) int64
    request_ids: list[str]  # (N,) group key: rows of one request stay on one side of a split
    case_ids: np.ndarray  # (N,) int64
    query_vecs: np.ndarray  # (N, D) float32 unit vectors
    case_vecs: np.ndarray  # (N, D) float32 unit vectors of the case's task
    plan_vecs: np.ndarray  # (N, D) float32 unit vectors of the case's plan
    rewards: np.ndarray  # (N,) float32 in [0, 1]
    credits: np.ndarray  # (N,) float32: the share of the outcome this row carries
    propensities: np.ndarray  # (N,) float32: probability the case was shown for the request

    def __len__(self) -> int:
        return len(self.request_ids)

    def take(self, index: np.ndarray) -> TrainingSet:
        """The rows at `index` (a boolean mask or integer positions)."""
        idx = np.flatnonzero(index) if index.dtype == bool else index
        return TrainingSet(
            impression_ids=self.impression_ids[idx],
            request_ids=[self.request_ids[i] for i in idx],
            case_ids=self.case_ids[idx],
            query_vecs=self.query_vecs[idx],
            case_vecs=self.case_vecs[idx],
            plan_vecs=self.plan_vecs[idx],
            rewards=self.rewards[idx],
            credits=self.credits[idx],
            propensities=self.propensities[idx],
        )


class PriorModel(Protocol):
    """A trained model as retrieval sees it: P(help) for cases nobody has tried for this query."""

    version: str

    def predict(
        self, query_vec: np.ndarray, case_vecs: np.ndarray, plan_vecs: np.ndarray
    ) -> np.ndarray:
        """(D,) or (N, D), (N, D), (N, D) -> (N,) probabilities that each case helps the query
        (one query for every case, or each case's own)."""
        ...


class Bank(Protocol):
    """What training and promotion need from a case bank (CaseBank, or the InMemoryBank fake)."""

    outcomes_commit_in_id_order: bool
    """Whether an outcome's id is also its place in commit order: then a reader that has seen
    every outcome up to an id has missed none below it (retriever.histories)."""

    def training_set(self, namespace: str | None = None) -> TrainingSet: ...
    def namespace_vectors(self, namespace: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...
    def labelled_count(self, namespace: str | None = None) -> int: ...
    def labelled_showings(self, namespace: str, after: int, limit: int) -> Showings: ...
    def generation(self) -> object | None: ...
    def revocations(self) -> int: ...
    def case_history(self, case_ids: list[int], per_case: int = HISTORY) -> History: ...
    def add_retriever_version(
        self, version: str, path: str, metrics: dict[str, Any], namespace: str | None = None
    ) -> None: ...
    def activate_retriever(self, version: str) -> None: ...
    def retriever_versions(self, namespace: str | None = None) -> list[dict[str, Any]]: ...
    def active_retriever(self, namespace: str | None = None) -> dict[str, Any] | None: ...
    def delete_retriever_version(self, version: str) -> None: ...
