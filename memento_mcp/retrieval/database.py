"""Dense search that the database does itself (PostgreSQL + pgvector): nothing kept in memory.

VectorIndex (index.py) mirrors a SQLite bank's vectors in each process and follows other
processes' writes through SQLite's change counter. A bank that searches its own vectors
(`searches_vectors`, casebank/postgres) needs none of that: each search is one query, so every
replica sees every committed write at once. This class gives it VectorIndex's surface.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np


class SearchingBank(Protocol):
    def nearest(
        self, namespace: str, query: np.ndarray, limit: int
    ) -> tuple[np.ndarray, np.ndarray]: ...
    def candidates(
        self, namespace: str, query: np.ndarray, limit: int, also: list[int]
    ) -> tuple[list[int], np.ndarray]: ...
    def vector_search_status(self) -> dict[str, dict[str, Any]]: ...


class DatabaseIndex:
    """VectorIndex's interface over a bank that runs the nearest-neighbour search itself."""

    def __init__(self, bank: SearchingBank) -> None:
        self.bank = bank

    def search(
        self, namespace: str, query: np.ndarray, limit: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """(case_ids, cosine similarities) of the `limit` nearest cases, best first."""
        return self.bank.nearest(namespace, query, limit)

    def candidates(
        self, namespace: str, query: np.ndarray, limit: int, also: list[int]
    ) -> tuple[list[int], np.ndarray]:
        """As VectorIndex.candidates, in one statement: search and read the vectors at once."""
        return self.bank.candidates(namespace, query, limit, also)

    def status(self) -> dict[str, dict[str, Any]]:
        return self.bank.vector_search_status()

    def sync(self) -> None:
        """Nothing to catch up with: the database is searched directly."""

    def invalidate(self) -> None:
        """Nothing cached to invalidate."""

    def flush(self) -> None:
        """The database keeps its HNSW index up to date on every write."""

    def wait(self, timeout: float | None = None) -> None:
        """No background builds."""

    def __len__(self) -> int:
        return sum(int(space["cases"]) for space in self.status().values())
