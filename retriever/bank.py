"""What the retriever needs from a case bank, and an in-memory bank that provides exactly that.

`memento_mcp.casebank.CaseBank` (SQLite) satisfies `Bank`; `InMemoryBank` is the small fake the
tests and the bench use when they want the learning loop without SQLite. It is product code in
the sense of the house style (a fake that ships), not a mock: it keeps versions the same way.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np

from retriever.data import TrainingSet
from retriever.model import CASE_STATS


class Bank(Protocol):
    def training_set(self, namespace: str | None = None) -> Any: ...  # fields of data.TrainingSet
    def case_stats(self, case_ids: list[int]) -> np.ndarray: ...
    def labelled_count(self, namespace: str | None = None) -> int: ...
    def add_retriever_version(self, version: str, path: str, metrics: dict[str, Any]) -> None: ...
    def activate_retriever(self, version: str) -> None: ...
    def retriever_versions(self) -> list[dict[str, Any]]: ...
    def active_retriever(self) -> dict[str, Any] | None: ...


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class InMemoryBank:
    """Cases as vectors, impressions with rewards, and a retriever_versions table, under one lock."""

    def __init__(self, dim: int = 384) -> None:
        self.dim = dim
        self._lock = threading.Lock()
        self._case_vecs: list[np.ndarray] = []
        self._case_rewards: list[float | None] = []
        # impression: (impression_id, request_id, case_id, query_vec, propensity, reward | None)
        self._impressions: list[list[Any]] = []
        self._versions: dict[str, dict[str, Any]] = {}

    # -- cases and impressions -------------------------------------------------------------
    def add_case(self, vec: np.ndarray, reward: float | None = None) -> int:
        with self._lock:
            self._case_vecs.append(np.asarray(vec, np.float32))
            self._case_rewards.append(reward)
            return len(self._case_vecs) - 1

    def case_vectors(self) -> np.ndarray:
        with self._lock:
            return (
                np.stack(self._case_vecs)
                if self._case_vecs
                else np.empty((0, self.dim), np.float32)
            )

    def log_impression(
        self, request_id: str, case_id: int, query_vec: np.ndarray, propensity: float = 1.0
    ) -> int:
        with self._lock:
            iid = len(self._impressions)
            self._impressions.append(
                [iid, request_id, case_id, np.asarray(query_vec, np.float32), propensity, None]
            )
            return iid

    def label(self, request_id: str, reward: float, case_ids: list[int] | None = None) -> int:
        """Give `reward` to the request's unlabelled impressions (only `case_ids` when given)."""
        with self._lock:
            n = 0
            for imp in self._impressions:
                if (
                    imp[1] == request_id
                    and imp[5] is None
                    and (case_ids is None or imp[2] in case_ids)
                ):
                    imp[5] = float(reward)
                    n += 1
            return n

    # -- Bank protocol -------------------------------------------------------------------------
    def _stats(self, case_ids: list[int], exclude: list[str | None]) -> np.ndarray:
        per_case: dict[int, list[tuple[str, float]]] = defaultdict(list)
        for imp in self._impressions:
            if imp[5] is not None:
                per_case[imp[2]].append((imp[1], imp[5]))
        out = np.empty((len(case_ids), len(CASE_STATS)), np.float32)
        for i, (cid, skip) in enumerate(zip(case_ids, exclude, strict=True)):
            rows = [r for rid, r in per_case.get(cid, []) if rid != skip]
            stored = self._case_rewards[cid]
            out[i] = (
                0.5 if stored is None else stored,
                (sum(rows) + 1) / (len(rows) + 2),
                np.log1p(len(rows)),
            )
        return out

    def case_stats(self, case_ids: list[int]) -> np.ndarray:
        with self._lock:
            return self._stats(list(case_ids), [None] * len(case_ids))

    def training_set(self, namespace: str | None = None) -> TrainingSet:
        with self._lock:
            rows = [imp for imp in self._impressions if imp[5] is not None]
            case_ids = [imp[2] for imp in rows]
            return TrainingSet(
                impression_ids=np.array([imp[0] for imp in rows], np.int64),
                request_ids=[imp[1] for imp in rows],
                query_vecs=np.stack([imp[3] for imp in rows])
                if rows
                else np.empty((0, self.dim), np.float32),
                case_vecs=np.stack([self._case_vecs[c] for c in case_ids])
                if rows
                else np.empty((0, self.dim), np.float32),
                case_stats=self._stats(case_ids, [imp[1] for imp in rows]),
                rewards=np.array([imp[5] for imp in rows], np.float32),
                propensities=np.array([imp[4] for imp in rows], np.float32),
            )

    def labelled_count(self, namespace: str | None = None) -> int:
        with self._lock:
            return sum(imp[5] is not None for imp in self._impressions)

    def add_retriever_version(self, version: str, path: str, metrics: dict[str, Any]) -> None:
        with self._lock:
            self._versions[version] = {
                "version": version, "path": path, "metrics": dict(metrics),
                "created_at": _now(), "promoted_at": None, "active": False,
            }  # fmt: skip

    def activate_retriever(self, version: str) -> None:
        with self._lock:
            if version not in self._versions:
                raise KeyError(version)
            for row in self._versions.values():
                row["active"] = row["version"] == version
            self._versions[version]["promoted_at"] = _now()

    def retriever_versions(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(row) for row in self._versions.values()]

    def active_retriever(self) -> dict[str, Any] | None:
        with self._lock:
            return next((dict(r) for r in self._versions.values() if r["active"]), None)
