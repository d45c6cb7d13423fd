"""Cases and their task embeddings: write, read, delete."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlite_utils

from memento_mcp.casebank.connection import Connection, now, to_blob
from memento_mcp.errors import NotFound
from memento_mcp.models import Case


def content_hash(task: str, plan: str, answer: str) -> str:
    return hashlib.sha256(json.dumps([task, plan, answer]).encode()).hexdigest()


@dataclass
class NewCase:
    """A case about to be written; the bank assigns its id."""

    namespace: str
    task: str
    plan: str
    answer: str = ""
    reward: float | None = None
    source: str = "agent"
    metadata: dict[str, Any] = field(default_factory=dict)
    trajectory: list[dict[str, Any]] | None = None
    request_id: str | None = None
    client_id: str | None = None  # who wrote it: a token's name, "local" for stdio and the CLI


class Cases(Connection):
    def add_cases(self, cases: list[tuple[NewCase, np.ndarray]]) -> list[tuple[int, bool]]:
        """Store cases with their embeddings in one transaction; returns (case_id, created).

        A case whose task, plan and answer already exist in its namespace is not stored again.
        """
        results: list[tuple[int, bool]] = []
        with self._write() as db:
            for case, vector in cases:
                results.append(self._insert_case(db, case, vector))
        return results

    def existing_cases(self, namespace: str, hashes: list[str]) -> dict[str, int]:
        """content_hash -> case_id for the hashes already stored in the namespace."""
        found: dict[str, int] = {}
        for start in range(0, len(hashes), 500):
            chunk = hashes[start : start + 500]
            rows = self._query(
                "SELECT content_hash, id FROM cases WHERE namespace = ?"
                f" AND content_hash IN ({','.join('?' * len(chunk))})",
                [namespace, *chunk],
            )
            found.update({row[0]: int(row[1]) for row in rows})
        return found

    def add_case(self, case: NewCase, vector: np.ndarray) -> tuple[int, bool]:
        return self.add_cases([(case, vector)])[0]

    def _insert_case(
        self, db: sqlite_utils.Database, case: NewCase, vector: np.ndarray
    ) -> tuple[int, bool]:
        digest = content_hash(case.task, case.plan, case.answer)
        existing = db.execute(
            "SELECT id FROM cases WHERE namespace = ? AND content_hash = ?",
            (case.namespace, digest),
        ).fetchone()
        if existing:
            return int(existing[0]), False
        stamp = now()
        cursor = db.execute(
            "INSERT INTO cases (namespace, task, plan, answer, reward, source, metadata,"
            " trajectory, content_hash, request_id, created_at, updated_at, client_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                case.namespace,
                case.task,
                case.plan,
                case.answer,
                case.reward,
                case.source,
                json.dumps(case.metadata),
                None if case.trajectory is None else json.dumps(case.trajectory),
                digest,
                case.request_id,
                stamp,
                stamp,
                case.client_id,
            ),
        )
        case_id = int(cursor.lastrowid or 0)
        db.execute(
            "INSERT INTO embeddings (case_id, encoder, vector) VALUES (?, ?, ?)",
            (case_id, self.encoder_name, to_blob(vector)),
        )
        return case_id, True

    def get_case(self, case_id: int, namespaces: Collection[str] | None = None) -> Case:
        """The case; with `namespaces`, a case outside them is reported exactly like a missing
        one, so that a tenant cannot tell another tenant's case ids from unused ones."""
        sql, params = f"{SELECT_CASES} WHERE id = ?", [case_id]
        if namespaces is not None:
            sql, params = sql + self._in_namespaces, [case_id, _json(namespaces)]
        rows = self._query(sql, params)
        if not rows:
            raise NotFound(f"no case with case_id {case_id}; retrieve_cases lists existing ones")
        return _case_from_row(dict(zip(_CASE_COLUMNS, rows[0], strict=True)))

    def cases_by_id(self, case_ids: list[int]) -> dict[int, Case]:
        if not case_ids:
            return {}
        marks = ",".join("?" * len(case_ids))
        rows = self._query(f"{SELECT_CASES} WHERE id IN ({marks})", case_ids)
        cases = [_case_from_row(dict(zip(_CASE_COLUMNS, row, strict=True))) for row in rows]
        return {case.case_id: case for case in cases}

    def iter_cases(self, namespace: str | None = None, batch: int = 1000) -> Iterator[Case]:
        last = 0
        while True:
            where, params = "id > ?", [last]
            if namespace is not None:
                where, params = where + " AND namespace = ?", [last, namespace]
            rows = self._query(
                f"{SELECT_CASES} WHERE {where} ORDER BY id LIMIT {batch}", params
            )
            if not rows:
                return
            for row in rows:
                yield _case_from_row(dict(zip(_CASE_COLUMNS, row, strict=True)))
            last = rows[-1][0]

    def delete_case(self, case_id: int, namespaces: Collection[str] | None = None) -> None:
        """Remove a case with its embedding and every impression of it (with `namespaces`, only
        a case in one of them: any other is reported as missing)."""
        sql, params = "SELECT 1 FROM cases WHERE id = ?", [case_id]
        if namespaces is not None:
            sql, params = sql + self._in_namespaces, [case_id, _json(namespaces)]
        with self._write() as db:
            if not db.execute(sql, params).fetchone():
                raise NotFound(f"no case with case_id {case_id}; nothing was deleted")
            _delete_cases(db, [case_id])


def _delete_cases(db: sqlite_utils.Database, case_ids: list[int]) -> None:
    """A case with its embeddings and every impression of it, inside the caller's transaction."""
    for start in range(0, len(case_ids), 500):
        chunk = case_ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for table, column in (("impressions", "case_id"), ("embeddings", "case_id"),
                              ("plan_embeddings", "case_id"), ("cases", "id")):  # fmt: skip
            db.execute(f"DELETE FROM {table} WHERE {column} IN ({marks})", chunk)


def _json(namespaces: Collection[str]) -> str:
    return json.dumps(sorted(namespaces))


_CASE_COLUMNS = (
    "id",
    "namespace",
    "task",
    "plan",
    "answer",
    "reward",
    "source",
    "metadata",
    "trajectory",
    "content_hash",
    "request_id",
    "created_at",
    "updated_at",
    "client_id",
)
SELECT_CASES = f"SELECT {', '.join(_CASE_COLUMNS)} FROM cases"
"""Columns named, not `*`: the Postgres bank's table has a search column besides these."""


def _case_from_row(row: dict[str, Any]) -> Case:
    return Case(
        case_id=row["id"],
        namespace=row["namespace"],
        task=row["task"],
        plan=row["plan"],
        answer=row["answer"],
        reward=row["reward"],
        source=row["source"],
        metadata=json.loads(row["metadata"] or "{}"),
        created_at=row["created_at"],
        trajectory=None if row["trajectory"] is None else json.loads(row["trajectory"]),
        client_id=row["client_id"],
    )

