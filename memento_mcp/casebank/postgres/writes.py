"""The writes whose SQL differs from SQLite's: a new case, plan vectors, a logged request's first row.

SQLite learns a new row's id from `lastrowid` and skips duplicates with INSERT OR IGNORE;
Postgres says RETURNING and ON CONFLICT. Two replicas storing the same case at once both get
the one row (the unique index decides, the loser reads the winner's id). Everything else about
writing (what a delete removes, how an outcome labels its impressions) is the shared code's.
"""

from __future__ import annotations

import json

import numpy as np

from memento_mcp.casebank.cases import NewCase, content_hash
from memento_mcp.casebank.connection import now
from memento_mcp.casebank.postgres.adapters import Vector
from memento_mcp.casebank.postgres.connection import PgConnection, Tx


class PgWrites(PgConnection):
    def _insert_case(self, db: Tx, case: NewCase, vector: np.ndarray) -> tuple[int, bool]:
        digest = content_hash(case.task, case.plan, case.answer)
        stamp = now()
        row = db.run(
            "INSERT INTO cases (namespace, task, plan, answer, reward, source, metadata,"
            " trajectory, content_hash, request_id, created_at, updated_at, client_id)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (namespace, content_hash) DO NOTHING RETURNING id",
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
        ).fetchone()
        if row is None:  # already stored (perhaps a moment ago, by another replica)
            existing = db.run(
                "SELECT id FROM cases WHERE namespace = %s AND content_hash = %s",
                (case.namespace, digest),
            ).fetchone()
            assert existing is not None  # the conflicting row is committed and visible now
            return int(existing[0]), False
        case_id = int(row[0])
        db.run(
            "INSERT INTO embeddings (case_id, namespace, encoder, vector) VALUES (%s, %s, %s, %s)",
            (case_id, case.namespace, self.encoder_name, Vector(vector)),
        )
        return case_id, True

    def add_plan_vectors(self, vectors: dict[int, np.ndarray]) -> None:
        """Store plan embeddings (cases deleted meanwhile are skipped)."""
        with self._write() as db:
            db.run_many(
                "INSERT INTO plan_embeddings (case_id, encoder, vector)"
                " SELECT %s, %s, %s WHERE EXISTS (SELECT 1 FROM cases WHERE id = %s)"
                " ON CONFLICT (case_id) DO UPDATE SET encoder = excluded.encoder,"
                " vector = excluded.vector",
                [
                    (case_id, self.encoder_name, Vector(vector), case_id)
                    for case_id, vector in vectors.items()
                ],
            )
