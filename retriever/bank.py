"""An in-memory `contract.Bank`: the learning loop without SQLite, for tests and benches.

`memento_mcp.casebank.CaseBank` is the real bank. This fake ships with the package (house style:
a fake that keeps the same rules, not a mock): cases belong to a namespace and carry a task and a
plan vector, a request's outcome is shared among its shown cases by `contract.credit_shares`, and
versions are kept per namespace the way the bank's `retriever_versions` table keeps them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from retriever.contract import HISTORY, MIN_CREDIT, History, Showings, TrainingSet, credit_shares


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


@dataclass
class _Impression:
    id: int
    request_id: str
    namespace: str
    case_id: int
    query_vec: np.ndarray
    propensity: float
    reward: float | None = None
    credit: float | None = None
    labelled: int = 0  # the order of its outcome among all outcomes (1, 2, ...)


class InMemoryBank:
    """Cases, impressions with rewards, and retriever versions, under one lock."""

    outcomes_commit_in_id_order = True  # labelled under the lock, in order

    def __init__(self, dim: int = 384) -> None:
        self.dim = dim
        self._lock = threading.Lock()
        self._tasks: list[np.ndarray] = []
        self._plans: list[np.ndarray] = []
        self._namespaces: list[str] = []
        self._impressions: list[_Impression] = []
        self._versions: dict[str, dict[str, Any]] = {}
        self._outcomes = 0

    # -- cases and impressions -------------------------------------------------------------
    def add_case(
        self, task_vec: np.ndarray, plan_vec: np.ndarray | None = None, namespace: str = "default"
    ) -> int:
        """A case; without a plan vector the task's stands in (as in a bank not yet migrated)."""
        with self._lock:
            self._tasks.append(np.asarray(task_vec, np.float32))
            self._plans.append(np.asarray(task_vec if plan_vec is None else plan_vec, np.float32))
            self._namespaces.append(namespace)
            return len(self._tasks) - 1

    def case_vectors(self) -> np.ndarray:
        """(N, D) task vectors of every case, by case id."""
        with self._lock:
            return np.stack(self._tasks) if self._tasks else np.empty((0, self.dim), np.float32)

    def plan_vectors(self) -> np.ndarray:
        """(N, D) plan vectors of every case, by case id."""
        with self._lock:
            return np.stack(self._plans) if self._plans else np.empty((0, self.dim), np.float32)

    def log_impression(
        self,
        request_id: str,
        case_id: int,
        query_vec: np.ndarray,
        propensity: float = 1.0,
        namespace: str = "default",
    ) -> int:
        """One shown case; log a request's cases in rank order."""
        with self._lock:
            iid = len(self._impressions)
            self._impressions.append(
                _Impression(iid, request_id, namespace, case_id,
                            np.asarray(query_vec, np.float32), propensity)
            )  # fmt: skip
            return iid

    def label(self, request_id: str, reward: float, used_case_ids: list[int] | None = None) -> int:
        """A request's outcome, shared among its shown cases as record_outcome shares it."""
        with self._lock:
            shown = [imp for imp in self._impressions if imp.request_id == request_id]
            shares = credit_shares([imp.case_id for imp in shown], used_case_ids)
            self._outcomes += 1
            n = 0
            for imp in shown:
                if imp.case_id in shares and imp.reward is None:
                    imp.reward, imp.credit = float(reward), shares[imp.case_id]
                    imp.labelled = self._outcomes
                    n += 1
            return n

    def _stack(self, vecs: list[np.ndarray]) -> np.ndarray:
        return np.stack(vecs) if vecs else np.empty((0, self.dim), np.float32)

    # -- contract.Bank -------------------------------------------------------------------------
    def training_set(self, namespace: str | None = None) -> TrainingSet:
        with self._lock:
            rows = [
                imp
                for imp in self._impressions
                if imp.reward is not None and namespace in (None, imp.namespace)
            ]

            return TrainingSet(
                impression_ids=np.array([imp.id for imp in rows], np.int64),
                request_ids=[imp.request_id for imp in rows],
                case_ids=np.array([imp.case_id for imp in rows], np.int64),
                query_vecs=self._stack([imp.query_vec for imp in rows]),
                case_vecs=self._stack([self._tasks[imp.case_id] for imp in rows]),
                plan_vecs=self._stack([self._plans[imp.case_id] for imp in rows]),
                rewards=np.array([imp.reward for imp in rows], np.float32),
                credits=np.array([imp.credit for imp in rows], np.float32),
                propensities=np.array([imp.propensity for imp in rows], np.float32),
            )

    def namespace_vectors(self, namespace: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with self._lock:
            ids = [i for i, ns in enumerate(self._namespaces) if ns == namespace]
            if not ids:
                empty = np.empty((0, self.dim), np.float32)
                return np.array(ids, np.int64), empty, empty.copy()
            return (
                np.array(ids, np.int64),
                np.stack([self._tasks[i] for i in ids]),
                np.stack([self._plans[i] for i in ids]),
            )

    def labelled_count(self, namespace: str | None = None) -> int:
        with self._lock:
            return sum(
                imp.reward is not None and namespace in (None, imp.namespace)
                for imp in self._impressions
            )

    def generation(self) -> None:
        """No sign of change kept: the learner reads on every retrieval."""
        return None

    def revocations(self) -> int:
        """Nothing here is ever revoked."""
        return 0

    def labelled_showings(self, namespace: str, after: int, limit: int) -> Showings:
        with self._lock:
            rows = sorted(
                (imp for imp in self._impressions if imp.labelled > after
                 and imp.namespace == namespace and (imp.credit or 0.0) >= MIN_CREDIT),
                key=lambda imp: (imp.labelled, imp.id),
            )[-limit:]  # fmt: skip

            return Showings(
                last_id=max((imp.labelled for imp in rows), default=after),
                case_ids=np.array([imp.case_id for imp in rows], np.int64),
                query_vecs=self._stack([imp.query_vec for imp in rows]),
                case_vecs=self._stack([self._tasks[imp.case_id] for imp in rows]),
                plan_vecs=self._stack([self._plans[imp.case_id] for imp in rows]),
                rewards=np.array([imp.reward for imp in rows], np.float64),
                credits=np.array([imp.credit for imp in rows], np.float64),
            )

    def case_history(self, case_ids: list[int], per_case: int = HISTORY) -> History:
        """Each case's latest labelled showings, grouped in the order asked, newest first."""
        with self._lock:
            rows = [
                (owner, imp)
                for owner, case_id in enumerate(case_ids)
                for imp in sorted(
                    (imp for imp in self._impressions if imp.case_id == case_id
                     and imp.reward is not None and (imp.credit or 0.0) >= MIN_CREDIT),
                    key=lambda imp: -imp.id,
                )[:per_case]
            ]  # fmt: skip
            return History(
                np.array([owner for owner, _ in rows], np.int64),
                self._stack([imp.query_vec for _, imp in rows]),
                np.array([imp.reward for _, imp in rows], np.float64),
                np.array([imp.credit for _, imp in rows], np.float64),
                np.array([imp.id for _, imp in rows], np.int64),
            )

    def add_retriever_version(
        self, version: str, path: str, metrics: dict[str, Any], namespace: str | None = None
    ) -> None:
        with self._lock:
            self._versions[version] = {
                "version": version, "path": path, "metrics": dict(metrics), "created_at": _now(),
                "promoted_at": None, "active": False, "namespace": namespace,
            }  # fmt: skip

    def activate_retriever(self, version: str) -> None:
        with self._lock:
            if version not in self._versions:
                raise KeyError(version)
            namespace = self._versions[version]["namespace"]
            for row in self._versions.values():
                if row["namespace"] == namespace:
                    row["active"] = row["version"] == version
            self._versions[version]["promoted_at"] = _now()

    def delete_retriever_version(self, version: str) -> None:
        with self._lock:
            if version in self._versions and not self._versions[version]["active"]:
                del self._versions[version]

    def retriever_versions(self, namespace: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            rows = [dict(r) for r in self._versions.values()]
        rows = [r for r in rows if namespace is None or r["namespace"] == namespace]
        return sorted(rows, key=lambda r: r["created_at"])

    def active_retriever(self, namespace: str | None = None) -> dict[str, Any] | None:
        active = [v for v in self.retriever_versions(namespace) if v["active"]]
        return max(active, key=lambda v: v["promoted_at"] or "") if active else None
