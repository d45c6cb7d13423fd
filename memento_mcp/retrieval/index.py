"""In-memory matrix of the bank's case embeddings, one per namespace, kept in step with SQLite.

Embeddings are computed once, when a case is written; a query is one matrix-vector product over
the namespace's rows (a few ms at 100k cases) instead of re-encoding the bank as the original
Memento did. Other processes may write to the same bank file, so before each search the index
asks SQLite whether anyone else committed and, if so, loads what is new.
"""

from __future__ import annotations

import threading

import numpy as np

from memento_mcp.casebank import CaseBank


class _Rows:
    """Growable (ids, vectors) arrays for one namespace: amortised O(1) appends."""

    def __init__(self, dims: int) -> None:
        self.ids = np.zeros(0, dtype=np.int64)
        self.vectors = np.zeros((0, dims), dtype=np.float32)
        self.size = 0

    def append(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        needed = self.size + len(ids)
        if needed > len(self.ids):
            capacity = max(needed, 2 * len(self.ids), 1024)
            grown_ids = np.zeros(capacity, dtype=np.int64)
            grown = np.zeros((capacity, self.vectors.shape[1]), dtype=np.float32)
            grown_ids[: self.size] = self.ids[: self.size]
            grown[: self.size] = self.vectors[: self.size]
            self.ids, self.vectors = grown_ids, grown
        self.ids[self.size : needed] = ids
        self.vectors[self.size : needed] = vectors
        self.size = needed


class VectorIndex:
    """Dense top-N over the cases of a namespace (pending ones included; callers filter)."""

    def __init__(self, bank: CaseBank, dims: int = 384) -> None:
        self.bank = bank
        self.dims = dims
        self._lock = threading.Lock()
        self._rows: dict[str, _Rows] = {}
        self._count = 0
        self._max_id = 0
        self._seen_version: int | None = None

    def sync(self) -> None:
        """Load cases committed since the last sync; reload everything if some were deleted."""
        with self._lock:
            version = self.bank.data_version()
            if version == self._seen_version:
                return
            count, max_id = self.bank.case_count()
            if max_id > self._max_id:
                self._load_after(self._max_id)
            if count != self._count:  # some cases were deleted: rebuild to stay exact
                self._rows, self._count, self._max_id = {}, 0, 0
                self._load_after(0)
            self._seen_version = version

    def _load_after(self, after_id: int) -> None:
        ids, namespaces, vectors = self.bank.vectors_after(after_id)
        if not len(ids):
            return
        names = np.array(namespaces)
        for namespace in dict.fromkeys(namespaces):
            mask = names == namespace
            self._rows.setdefault(namespace, _Rows(self.dims)).append(ids[mask], vectors[mask])
        self._count += len(ids)
        self._max_id = max(self._max_id, int(ids[-1]))

    def invalidate(self) -> None:
        """Our own connection wrote; data_version only moves for other connections' commits."""
        with self._lock:
            self._seen_version = None

    def search(self, namespace: str, query: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """(case_ids, cosine similarities) of the `limit` nearest cases, best first."""
        self.sync()
        rows = self._rows.get(namespace)
        if rows is None or rows.size == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        sims = rows.vectors[: rows.size] @ query  # (size,)
        if limit < rows.size:
            top = np.argpartition(-sims, limit)[:limit]
        else:
            top = np.arange(rows.size)
        top = top[np.argsort(-sims[top])]
        return rows.ids[top], sims[top]

    def __len__(self) -> int:
        return self._count
