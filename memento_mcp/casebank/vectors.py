"""Case embeddings in bulk: by id for the scorer and exports (`Vectors`, part of CaseBank), and by
id range and namespace for the vector index, with a log of deleted cases, so that an index (in
this process or in another sharing the file) follows every write without rereading the bank.

The deletion log (`case_deletions`, schema v3) is filled by a trigger on `cases`, so it sees
the deletes of every process sharing the bank.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from memento_mcp.casebank.connection import Connection, from_blob


class Vectors(Connection):
    def case_vectors(self, case_ids: list[int]) -> np.ndarray:
        """(N, D) task embeddings, in the order of `case_ids`."""
        marks = ",".join("?" * len(case_ids))
        rows: dict[int, bytes] = dict(
            self._query(  # type: ignore[arg-type]  # (case_id, vector) rows
                f"SELECT case_id, vector FROM embeddings WHERE case_id IN ({marks})", case_ids
            )
        )
        return np.stack([from_blob(rows[case_id]) for case_id in case_ids])

    def labelled_vectors(self, case_ids: list[int]) -> tuple[list[int], np.ndarray]:
        """The cases among `case_ids` that exist and have a reward (in the order given), and
        their (N, D) task embeddings: retrieval's candidates, read without the cases' text."""
        if not case_ids:  # `IN ()` is an error in PostgreSQL
            return [], np.zeros((0, 0), dtype=np.float32)
        marks = ",".join("?" * len(case_ids))
        rows: dict[int, bytes] = dict(
            self._query(  # type: ignore[arg-type]  # (case_id, vector) rows
                "SELECT embeddings.case_id, embeddings.vector FROM embeddings"
                " JOIN cases ON cases.id = embeddings.case_id"
                f" WHERE embeddings.case_id IN ({marks}) AND cases.reward IS NOT NULL",
                case_ids,
            )
        )
        ids = [case_id for case_id in case_ids if case_id in rows]
        if not ids:
            return [], np.zeros((0, 0), dtype=np.float32)  # the caller knows its dimensions
        return ids, np.stack([from_blob(rows[case_id]) for case_id in ids])


CHUNK = 50_000
"""Rows per read: bounds the Python objects alive at once while a million vectors load."""


@dataclass
class BankState:
    """Where the bank stands: its highest case id and deletion-log position."""

    max_id: int
    deletion_seq: int


def state(bank: Connection) -> BankState:
    # The AUTOINCREMENT high-water mark, not max(id): deleting the newest case must not move it.
    row = bank._query(
        "SELECT (SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'cases'),"
        " (SELECT coalesce(max(seq), 0) FROM case_deletions)"
    )[0]
    return BankState(int(row[0]), int(row[1]))


def namespace_counts(bank: Connection) -> dict[str, int]:
    return {row[0]: int(row[1]) for row in bank._query(
        "SELECT namespace, count(*) FROM cases GROUP BY namespace"
    )}


def vectors(
    bank: Connection, after_id: int, upto_id: int, namespace: str | None = None, few: bool = False
) -> Iterator[tuple[np.ndarray, list[str], np.ndarray]]:
    """(ids, namespaces, (n, dims) vectors) of cases with after_id < id <= upto_id, in chunks.

    `few`: the namespace holds few of the bank's cases, so look them up through the namespace
    index (then sort them); otherwise walk the id range in order, which a big namespace needs
    (through the index, every chunk would sort the whole namespace again).
    """
    last = after_id
    few = few and namespace is not None
    if few:
        # The namespace index finds the ids; only they are sorted, and the vectors are read in
        # id order after. Sorting the joined rows instead puts every vector through a temporary
        # B-tree: 0.5-0.9 s for 10k cases against 0.05 s, most of a server's start (issue 10).
        select = (
            "cases.id IN (SELECT id FROM cases WHERE namespace = ? AND id > ? AND id <= ?"
            f" ORDER BY id LIMIT {CHUNK})"
        )
    else:
        where = "" if namespace is None else " AND +cases.namespace = ?"
        select = f"cases.id > ? AND cases.id <= ?{where}"
    while True:
        params: list[object] = [last, upto_id]
        if namespace is not None:
            params.insert(0 if few else 2, namespace)
        rows = bank._query(
            "SELECT cases.id, cases.namespace, embeddings.vector FROM cases"
            " JOIN embeddings ON embeddings.case_id = cases.id"
            f" WHERE {select} ORDER BY cases.id LIMIT {CHUNK}",
            params,
        )
        if not rows:
            return
        ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        flat = np.frombuffer(b"".join(row[2] for row in rows), dtype=np.float32)
        yield ids, [row[1] for row in rows], flat.reshape(len(rows), -1)
        last = int(ids[-1])
        if len(rows) < CHUNK:
            return


def deletions(
    bank: Connection, after_seq: int, upto_seq: int, namespace: str | None = None
) -> list[tuple[int, str]]:
    """(case_id, namespace) of the cases deleted with after_seq < seq <= upto_seq."""
    where = "" if namespace is None else " AND namespace = ?"
    params: list[object] = [after_seq, upto_seq] + ([] if namespace is None else [namespace])
    rows = bank._query(
        f"SELECT case_id, namespace FROM case_deletions WHERE seq > ? AND seq <= ?{where}"
        " ORDER BY seq",
        params,
    )
    return [(int(row[0]), row[1]) for row in rows]


def read_snapshot(bank: Connection) -> _ReadTransaction:
    """A read transaction: every read inside sees the bank at one moment (WAL snapshot)."""
    return _ReadTransaction(bank)


class _ReadTransaction:
    def __init__(self, bank: Connection) -> None:
        self.bank = bank

    def __enter__(self) -> None:
        self.bank._lock.acquire()
        if not self.bank.db.conn.in_transaction:
            self.bank.db.execute("BEGIN")
            self.opened = True
        else:
            self.opened = False

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        try:
            if self.opened and kind is None:
                self.bank.db.execute("COMMIT")
            elif self.opened and self.bank.db.conn.in_transaction:
                # A read failed (a damaged bank, say): end the transaction without letting a
                # second error from SQLite hide the first one, which is already on its way up.
                with contextlib.suppress(sqlite3.Error):
                    self.bank.db.conn.rollback()
        finally:
            self.bank._lock.release()
