"""What the learned retriever reads: labelled impressions as arrays, and its versions."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from memento_mcp.casebank.connection import Connection, from_blob, now, to_blob
from memento_mcp.errors import NotFound
from retriever.contract import HISTORY, MIN_CREDIT, History, Showings, TrainingSet


class Learning(Connection):
    dimensions = 384  # all-MiniLM-L6-v2

    def training_set(self, namespace: str | None = None, limit: int = 50_000) -> TrainingSet:
        """The latest `limit` labelled impressions (of one namespace, or all) as arrays.

        A case whose plan has not been embedded yet contributes its task vector as the plan's.
        """
        sql = (
            "SELECT impressions.id, impressions.request_id, impressions.case_id,"
            " requests.query_vector, embeddings.vector, plan_embeddings.vector,"
            " impressions.reward, coalesce(impressions.credit, 1.0), impressions.propensity"
            " FROM impressions"
            " JOIN requests ON requests.id = impressions.request_id"
            " JOIN embeddings ON embeddings.case_id = impressions.case_id"
            " LEFT JOIN plan_embeddings ON plan_embeddings.case_id = impressions.case_id"
            " WHERE impressions.reward IS NOT NULL"
        )
        params: list[Any] = []
        if namespace is not None:
            sql += " AND requests.namespace = ?"
            params.append(namespace)
        rows = self._query(sql + " ORDER BY impressions.id DESC LIMIT ?", [*params, limit])[::-1]
        n = len(rows)

        def matrix(column: int, fallback: int) -> np.ndarray:
            if not n:
                return np.zeros((0, self.dimensions), dtype=np.float32)
            blobs = (row[column] if row[column] is not None else row[fallback] for row in rows)
            return np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(n, -1).copy()

        return TrainingSet(
            impression_ids=np.array([row[0] for row in rows], dtype=np.int64),
            request_ids=[row[1] for row in rows],
            case_ids=np.array([row[2] for row in rows], dtype=np.int64),
            query_vecs=matrix(3, 3),
            case_vecs=matrix(4, 4),
            plan_vecs=matrix(5, fallback=4),
            rewards=np.array([row[6] for row in rows], dtype=np.float32),
            credits=np.array([row[7] for row in rows], dtype=np.float32),
            propensities=np.array([row[8] for row in rows], dtype=np.float32),
        )

    def namespace_vectors(self, namespace: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(case ids, task vectors, plan vectors) of every answered case in a namespace.

        Offline policy evaluation re-ranks a logged request's candidates from these.
        """
        rows = self._query(
            "SELECT cases.id, embeddings.vector, coalesce(plan_embeddings.vector, embeddings.vector)"
            " FROM cases JOIN embeddings ON embeddings.case_id = cases.id"
            " LEFT JOIN plan_embeddings ON plan_embeddings.case_id = cases.id"
            " WHERE cases.namespace = ? AND cases.reward IS NOT NULL ORDER BY cases.id",
            (namespace,),
        )
        ids = np.array([row[0] for row in rows], dtype=np.int64)
        if not rows:
            empty = np.zeros((0, self.dimensions), dtype=np.float32)
            return ids, empty, empty.copy()
        tasks = np.frombuffer(b"".join(r[1] for r in rows), np.float32).reshape(len(rows), -1)
        plans = np.frombuffer(b"".join(r[2] for r in rows), np.float32).reshape(len(rows), -1)
        return ids, tasks.copy(), plans.copy()

    def plan_vectors(self, case_ids: list[int]) -> tuple[np.ndarray, list[int]]:
        """(N, D) plan embeddings, and the ids of cases whose plan has none yet (their task's
        vector stands in for it)."""
        if not case_ids:
            return np.zeros((0, self.dimensions), np.float32), []
        rows = {
            row[0]: (row[1], row[2])
            for row in self._where_case_in(
                "SELECT embeddings.case_id, coalesce(plan_embeddings.vector, embeddings.vector),"
                " plan_embeddings.case_id IS NULL FROM embeddings LEFT JOIN plan_embeddings"
                " ON plan_embeddings.case_id = embeddings.case_id WHERE embeddings.case_id",
                case_ids,
            )
        }
        vectors = np.stack([from_blob(rows[case_id][0]) for case_id in case_ids])
        return vectors, [case_id for case_id in case_ids if rows[case_id][1]]

    def _where_case_in(self, sql: str, case_ids: list[int]) -> list[Any]:
        """`sql` (ending in a case id column) restricted to `case_ids` (Postgres: one array)."""
        return self._query(f"{sql} IN ({','.join('?' * len(case_ids))})", case_ids)

    def labelled_showings(self, namespace: str, after: int, limit: int) -> Showings:
        """The showings labelled by outcomes after outcome `after` (at most the newest `limit`),
        oldest first: what the plan prior (retriever.plan_prior) folds in on each retrieval."""
        rows = self._query(
            "SELECT outcomes.id, impressions.case_id, requests.query_vector, embeddings.vector,"
            " coalesce(plan_embeddings.vector, embeddings.vector), impressions.reward,"
            " coalesce(impressions.credit, 1.0) FROM outcomes"
            " JOIN requests ON requests.id = outcomes.request_id"
            " JOIN impressions ON impressions.request_id = outcomes.request_id"
            " JOIN embeddings ON embeddings.case_id = impressions.case_id"
            " LEFT JOIN plan_embeddings ON plan_embeddings.case_id = impressions.case_id"
            " WHERE outcomes.id > ? AND requests.namespace = ? AND impressions.reward IS NOT NULL"
            " AND coalesce(impressions.credit, 1.0) >= ?"
            " ORDER BY outcomes.id DESC, impressions.id DESC LIMIT ?",
            (after, namespace, MIN_CREDIT, limit),
        )[::-1]

        def matrix(column: int) -> np.ndarray:
            blobs = b"".join(row[column] for row in rows)
            return np.frombuffer(blobs, np.float32).reshape(len(rows), self.dimensions)

        return Showings(
            last_id=max((int(row[0]) for row in rows), default=after),
            case_ids=np.array([row[1] for row in rows], dtype=np.int64),
            query_vecs=matrix(2),
            case_vecs=matrix(3),
            plan_vecs=matrix(4),
            rewards=np.array([row[5] for row in rows], dtype=np.float64),
            credits=np.array([row[6] for row in rows], dtype=np.float64),
        )

    def revocations(self) -> int:
        """The newest revocation's number, 0 before any: the learner rebuilds when it moves."""
        return int(self._query("SELECT coalesce(max(seq), 0) FROM revocations")[0][0])

    def plans_to_embed(self, limit: int = 256) -> list[tuple[int, str]]:
        """(case_id, plan) of cases whose plan has no embedding yet, oldest first."""
        rows = self._query(
            "SELECT cases.id, cases.plan FROM cases"
            " LEFT JOIN plan_embeddings ON plan_embeddings.case_id = cases.id"
            " WHERE plan_embeddings.case_id IS NULL ORDER BY cases.id LIMIT ?",
            (limit,),
        )
        return [(int(row[0]), row[1]) for row in rows]

    def add_plan_vectors(self, vectors: dict[int, np.ndarray]) -> None:
        """Store plan embeddings (cases deleted meanwhile are skipped)."""
        with self._write() as db:
            db.conn.executemany(
                "INSERT OR REPLACE INTO plan_embeddings (case_id, encoder, vector)"
                " SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM cases WHERE id = ?)",
                [
                    (case_id, self.encoder_name, to_blob(vector), case_id)
                    for case_id, vector in vectors.items()
                ],
            )

    def case_history(self, case_ids: list[int], per_case: int = HISTORY) -> History:
        """Each case's latest labelled showings (rows grouped in the order of `case_ids`, newest
        first), leaving out showings that carried a negligible share of their outcome.

        Ranking weighs them by how close each query was to the one at hand, so a case's record
        speaks for the tasks it was tried on, not for every task it resembles. One statement: a
        LIMITed read per case through a covering index (schema v4), so the cost stays bounded
        however long a popular case's history grows.
        """
        if not case_ids:
            return History(
                np.zeros(0, np.int64), np.zeros((0, self.dimensions), np.float32),
                np.zeros(0), np.zeros(0), np.zeros(0, np.int64),
            )  # fmt: skip
        latest = (
            "SELECT * FROM (SELECT ? AS owner, impressions.id AS id, requests.query_vector,"
            " impressions.reward, coalesce(impressions.credit, 1.0) FROM impressions"
            " JOIN requests ON requests.id = impressions.request_id"
            " WHERE impressions.case_id = ? AND impressions.reward IS NOT NULL"
            " AND coalesce(impressions.credit, 1.0) >= ? ORDER BY impressions.id DESC LIMIT ?)"
        )
        params = [
            p for i, case_id in enumerate(case_ids) for p in (i, case_id, MIN_CREDIT, per_case)
        ]
        rows = self._query(
            " UNION ALL ".join([latest] * len(case_ids)) + " ORDER BY owner, id DESC", params
        )
        owner, ids, blobs, rewards, credits = zip(*rows) if rows else ((), (), (), (), ())
        queries = np.frombuffer(b"".join(blobs), np.float32).reshape(len(blobs), self.dimensions)
        return History(
            np.array(owner, dtype=np.int64), queries, np.array(rewards), np.array(credits),
            np.array(ids, dtype=np.int64),
        )  # fmt: skip

    def add_retriever_version(
        self, version: str, path: str, metrics: dict[str, Any], namespace: str | None = None
    ) -> None:
        """Register a trained version (inactive) for a namespace, or for all (None)."""
        with self._write() as db:
            db.execute(
                "INSERT INTO retriever_versions (version, path, metrics, created_at, active,"
                " namespace) VALUES (?, ?, ?, ?, 0, ?)",
                (version, path, json.dumps(metrics), now(), namespace),
            )

    def activate_retriever(self, version: str) -> None:
        """Make `version` the one that serves its namespace; the swap is a single transaction."""
        with self._write() as db:
            row = db.execute(
                "SELECT namespace FROM retriever_versions WHERE version = ?", (version,)
            ).fetchone()
            if row is None:
                raise NotFound(f"no retriever version {version!r}")
            db.execute(
                "UPDATE retriever_versions SET active = 0 WHERE active = 1 AND namespace IS ?",
                (row[0],),
            )
            db.execute(
                "UPDATE retriever_versions SET active = 1, promoted_at = ? WHERE version = ?",
                (now(), version),
            )

    def delete_retriever_version(self, version: str) -> None:
        """Forget an inactive version (its checkpoint file is the caller's to remove)."""
        with self._write() as db:
            db.execute(
                "DELETE FROM retriever_versions WHERE version = ? AND active = 0", (version,)
            )

    def retriever_versions(self, namespace: str | None = None) -> list[dict[str, Any]]:
        """Versions of one namespace, oldest first (None: every namespace's)."""
        rows = self._query(
            f"SELECT {_VERSION_COLUMNS} FROM retriever_versions"
            " WHERE ? IS NULL OR namespace = ? ORDER BY created_at",
            (namespace, namespace),
        )
        return [_version(row) for row in rows]

    def active_retriever(self, namespace: str | None = None) -> dict[str, Any] | None:
        """The version serving `namespace` (None: the most recently promoted anywhere).

        Every retrieval asks, so this reads one row (another process may have promoted)."""
        rows = self._query(
            f"SELECT {_VERSION_COLUMNS} FROM retriever_versions WHERE active = 1"
            " AND (? IS NULL OR namespace = ?) ORDER BY promoted_at DESC LIMIT 1",
            (namespace, namespace),
        )
        return _version(rows[0]) if rows else None


_VERSION_COLUMNS = "version, path, metrics, created_at, promoted_at, active, namespace"


def _version(row: Any) -> dict[str, Any]:
    return {
        "version": row[0],
        "path": row[1],
        "metrics": json.loads(row[2] or "{}"),
        "created_at": row[3],
        "promoted_at": row[4],
        "active": bool(row[5]),
        "namespace": row[6],
    }
