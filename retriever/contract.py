"""The learned retriever's contract with the case bank and the server. Torch-free.

Everything that both sides must agree on lives here and nowhere else: the arrays a model trains
on (`TrainingSet`), what a bank offers the retriever (`Bank`), what a serving model offers
retrieval (`PriorModel`), and the two rules that turn one outcome into evidence about the cases
shown: how the credit is shared (`credit_shares`) and how old evidence fades
(`recency_weights`).

The memento_mcp side imports this module; nothing here imports memento_mcp or torch, so the
server can rank with a trained model without loading torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

EVIDENCE_HALF_LIFE = 4.0
"""A case's older outcomes count half after this many newer ones (in units of credit).

Short enough that a case that used to work and now fails loses its rank within tens of outcomes,
long enough (about 6 outcomes' worth of evidence at most) that, with sharpened Thompson draws
(policy.SHARPNESS), a 0.85 case and a 0.25 case are told apart. Tuned with bench/scenarios.py:
half-lives of 8 and 6 followed drift more slowly (0.67 and 0.76 of the oracle against 0.86)."""

HISTORY = 16
"""Latest labelled showings of a case that ranking reads: behind 16 outcomes' worth of credit an
outcome weighs 6 % (four half-lives), and reading more costs every retrieval (bench/load.py)."""

MIN_CREDIT = 0.05
"""Showings that carried less of an outcome than this (a fourth-ranked case nobody named: 0.004)
are left out of the history: they would take its slots and weigh next to nothing."""


@dataclass
class History:
    """Candidates' latest labelled showings as flat arrays: rows grouped by candidate (its index
    in the list asked for), newest first within each."""

    owner: np.ndarray  # (M,) int: which candidate the row belongs to
    queries: np.ndarray  # (M, D) float32: the query each showing answered
    rewards: np.ndarray  # (M,) float
    credits: np.ndarray  # (M,) float: the share of its outcome the showing carried


def recency_weights(owner: np.ndarray, credits: np.ndarray) -> np.ndarray:
    """Each outcome's weight: its credit, halved for every EVIDENCE_HALF_LIFE of credit newer
    than it in the same candidate's history (rows grouped by owner, newest first)."""
    running = np.cumsum(credits)
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]]) if len(owner) else owner
    before_group = np.repeat(running[starts] - credits[starts], np.diff(np.r_[starts, len(owner)]))
    newer = running - credits - before_group
    weights: np.ndarray = credits * 0.5 ** (newer / EVIDENCE_HALF_LIFE)
    return weights


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

    def training_set(self, namespace: str | None = None) -> TrainingSet: ...
    def namespace_vectors(self, namespace: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...
    def labelled_count(self, namespace: str | None = None) -> int: ...
    def labelled_showings(self, namespace: str, after: int, limit: int) -> Showings: ...
    def case_history(self, case_ids: list[int], per_case: int = HISTORY) -> History: ...
    def add_retriever_version(
        self, version: str, path: str, metrics: dict[str, Any], namespace: str | None = None
    ) -> None: ...
    def activate_retriever(self, version: str) -> None: ...
    def retriever_versions(self, namespace: str | None = None) -> list[dict[str, Any]]: ...
    def active_retriever(self, namespace: str | None = None) -> dict[str, Any] | None: ...
    def delete_retriever_version(self, version: str) -> None: ...
