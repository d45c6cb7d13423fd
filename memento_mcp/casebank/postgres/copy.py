"""Moving a SQLite bank into PostgreSQL: every table, row for row, ids kept, re-runnable.

`memento-mcp migrate --to postgresql://...` calls `copy_bank`. Ids are kept (agents hold
case_ids and request_ids), so a row already in the target is recognised by its id and skipped:
an interrupted copy is finished by running it again, and a second run adds nothing. A target
that holds *other* cases under the same ids is refused rather than merged. Each batch is one
transaction. Afterwards the identity sequences start above the highest id ever given out in the
SQLite file (its AUTOINCREMENT mark), so no deleted case's id is handed out again. Retriever
versions travel with their serving weights, read from the checkpoint files beside their paths.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from memento_mcp.casebank.postgres.adapters import Vector
from memento_mcp.casebank.postgres.schema import HNSW_INDEX, TSV_INDEX
from memento_mcp.casebank.postgres.store import PostgresBank
from memento_mcp.casebank.store import CaseBank
from memento_mcp.errors import StorageError

BATCH = 2000
Progress = Callable[[str, int, int], None]  # (table, rows done, rows in all)


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[str, ...]
    key: str  # the column that identifies a row in both banks
    source: str = ""  # the SELECT list in SQLite when it differs from `columns`

    def select(self) -> str:
        return self.source or ", ".join(self.columns)


TABLES = (
    Table("cases", ("id", "namespace", "task", "plan", "answer", "reward", "source", "metadata",
                    "trajectory", "content_hash", "request_id", "created_at", "updated_at",
                    "client_id"), "id"),
    Table("embeddings", ("case_id", "namespace", "encoder", "vector"), "case_id",
          "embeddings.case_id, (SELECT namespace FROM cases WHERE cases.id = embeddings.case_id),"
          " embeddings.encoder, embeddings.vector"),
    Table("plan_embeddings", ("case_id", "encoder", "vector"), "case_id"),
    Table("requests", ("id", "namespace", "query", "query_vector", "scorer", "source",
                       "created_at", "client_id"), "id"),
    Table("impressions", ("id", "request_id", "case_id", "rank", "score", "similarity",
                          "propensity", "reward", "labelled_at", "credit"), "id"),
    Table("outcomes", ("id", "request_id", "case_id", "reward", "used_case_ids", "recorded_at",
                       "client_id"), "id"),
    Table("retriever_versions", ("version", "path", "metrics", "created_at", "promoted_at",
                                 "active", "namespace", "weights"), "version",
          "version, path, metrics, created_at, promoted_at, active, namespace, NULL"),
    Table("revocations", ("seq", "client_id", "since", "revoked_at"), "seq"),
)  # fmt: skip
INDEXES = {"embeddings_hnsw": HNSW_INDEX, "cases_tsv": TSV_INDEX}
VECTOR_COLUMNS = {("embeddings", "vector"), ("plan_embeddings", "vector")}


def copy_bank(
    source: CaseBank, target: PostgresBank, progress: Progress | None = None
) -> dict[str, int]:
    """Copy every row of `source` that `target` lacks; returns rows added per table."""
    _refuse_a_different_bank(source, target)
    if not target._run("SELECT 1 FROM embeddings LIMIT 1"):
        # Building the search indexes once at the end is several times faster than growing
        # them row by row; a copy stopped before the end builds them when run again.
        with target._write() as db:
            for index in INDEXES:
                db.run(f"DROP INDEX IF EXISTS {index}")
    added: dict[str, int] = {}
    for table in TABLES:
        total = int(source._query(f"SELECT count(*) FROM {table.name}")[0][0])
        done = added[table.name] = 0
        if progress:
            progress(table.name, 0, total)
        for rows in _batches(source, table):
            added[table.name] += _insert(target, table, rows)
            done += len(rows)
            if progress:
                progress(table.name, done, total)
    _advance_sequences(source, target)
    _build_indexes(target, progress)  # also finishes an earlier run that was stopped early
    # Fresh statistics and visibility: without them the planner takes a namespace for rare and
    # sorts its rows instead of walking the HNSW index, and index-only scans visit the table.
    with target._errors("write"), target.pool.connection() as conn:
        conn.execute("SET statement_timeout = 0")  # minutes at a million cases
        conn.execute("VACUUM ANALYZE")
        conn.execute("RESET statement_timeout")  # back to the connection's own
    return added


def _build_indexes(target: PostgresBank, progress: Progress | None) -> None:
    for index, definition in INDEXES.items():
        if target._run("SELECT 1 FROM pg_indexes WHERE indexname = %s", (index,)):
            continue
        if progress:
            progress(f"index {index}", 0, 1)
        with target._write() as db:
            db.run("SET LOCAL maintenance_work_mem = '1GB'")  # the graph in memory: fast build
            db.run("SET LOCAL statement_timeout = 0")  # minutes at a million cases
            db.run(definition)
        if progress:
            progress(f"index {index}", 1, 1)


def _refuse_a_different_bank(source: CaseBank, target: PostgresBank) -> None:
    """A case id present in both with different contents means another bank lives there."""
    theirs = {int(row[0]): str(row[1]) for row in target._run("SELECT id, content_hash FROM cases")}
    if not theirs:
        return
    for rows in _batches(source, Table("cases", ("id", "content_hash"), "id")):
        for case_id, digest in rows:
            if theirs.get(case_id, digest) != digest:
                raise StorageError(
                    f"{target.path} already holds a different case under case_id {case_id};"
                    " migrate into an empty database (or the one an earlier migrate filled)"
                )


def _batches(source: CaseBank, table: Table) -> Iterator[list[tuple[Any, ...]]]:
    last = 0
    while True:
        rows = source._query(
            f"SELECT rowid, {table.select()} FROM {table.name} WHERE rowid > ?"
            f" ORDER BY rowid LIMIT {BATCH}",
            (last,),
        )
        if not rows:
            return
        last = rows[-1][0]
        yield [tuple(row[1:]) for row in rows]


def _insert(target: PostgresBank, table: Table, rows: list[tuple[Any, ...]]) -> int:
    """Insert the rows the target lacks (by key), in one transaction; returns how many."""
    key = table.columns.index(table.key)
    present = {
        row[0]
        for row in target._run(
            f"SELECT {table.key} FROM {table.name} WHERE {table.key} = ANY(%s)",
            ([row[key] for row in rows],),
        )
    }
    fresh = [_adapt(table, row) for row in rows if row[key] not in present]
    if not fresh:
        return 0
    marks = ", ".join(["%s"] * len(table.columns))
    with target._write() as db:
        db.run_many(
            f"INSERT INTO {table.name} ({', '.join(table.columns)}) VALUES ({marks})"
            " ON CONFLICT DO NOTHING",
            fresh,
        )
    return len(fresh)


def _adapt(table: Table, row: tuple[Any, ...]) -> tuple[Any, ...]:
    values = list(row)
    for i, column in enumerate(table.columns):
        if (table.name, column) in VECTOR_COLUMNS:
            values[i] = Vector(np.frombuffer(values[i], dtype=np.float32))
    if table.name == "retriever_versions":
        values[-1] = _weights(values[1])
    return tuple(values)


def _weights(path: str | None) -> bytes | None:
    """The version's serving weights (`<version>.npz` beside its checkpoint), when on this disk."""
    from retriever.versions import serving_path

    if not path:
        return None
    weights = serving_path(path)
    return weights.read_bytes() if weights.exists() else None


def _advance_sequences(source: CaseBank, target: PostgresBank) -> None:
    """New ids start above every id the SQLite file ever gave out."""
    given = {
        str(row[0]): int(row[1]) for row in source._query("SELECT name, seq FROM sqlite_sequence")
    }
    with target._write() as db:
        for table, key in (("cases", "id"), ("impressions", "id"), ("outcomes", "id"),
                           ("revocations", "seq")):  # fmt: skip
            floor = int(given.get(table, 0))
            db.run(
                f"SELECT setval(pg_get_serial_sequence('{table}', '{key}'),"
                f" greatest(%s, (SELECT coalesce(max({key}), 0) FROM {table}), 1))",
                (floor,),
            )
