"""Exact search: a growable matrix of (case id, vector) rows and its top-n by dot product."""

from __future__ import annotations

import numpy as np


class Rows:
    """Growable (ids, vectors) arrays: amortised O(1) appends, O(n) removal."""

    def __init__(self, dims: int) -> None:
        self.dims = dims
        self.ids = np.zeros(0, dtype=np.int64)
        self.vectors = np.zeros((0, dims), dtype=np.float32)
        self.size = 0

    def append(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        needed = self.size + len(ids)
        if needed > len(self.ids):
            self._resize(max(needed, 2 * len(self.ids), 1024))
        self.ids[self.size : needed] = ids
        self.vectors[self.size : needed] = vectors
        self.size = needed

    def _resize(self, capacity: int) -> None:
        ids = np.zeros(capacity, dtype=np.int64)
        vectors = np.zeros((capacity, self.dims), dtype=np.float32)
        ids[: self.size] = self.ids[: self.size]
        vectors[: self.size] = self.vectors[: self.size]
        self.ids, self.vectors = ids, vectors

    def remove(self, case_id: int) -> bool:
        where = np.flatnonzero(self.ids[: self.size] == case_id)
        if not len(where):
            return False
        last = self.size - 1
        i = int(where[0])
        self.ids[i], self.vectors[i] = self.ids[last], self.vectors[last]
        self.size = last
        return True

    def drop_upto(self, watermark: int) -> None:
        """Forget the rows with id <= watermark (now in the index file), and the memory."""
        keep = self.ids[: self.size] > watermark
        ids, vectors = self.ids[: self.size][keep], self.vectors[: self.size][keep]
        self.size = 0
        self.ids = np.zeros(0, dtype=np.int64)
        self.vectors = np.zeros((0, self.dims), dtype=np.float32)
        self.append(ids, vectors)

    def top(self, query: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        if self.size == 0 or n <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        sims = self.vectors[: self.size] @ query  # (size,)
        top = np.argpartition(-sims, n)[:n] if n < self.size else np.arange(self.size)
        return self.ids[top], sims[top]
