"""The learned retriever's reads and versions on Postgres, with its weights in the database.

Replicas may run on different machines, so a checkpoint file on the trainer's disk is not
enough: registering a version stores its serving weights (`<version>.npz`, a few MB at most)
in the version's row, and a replica asked for a version it has no file for writes the row's
weights into its own cache first. Every replica therefore serves whatever version is active,
promotion and rollback included, on its next request.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

import numpy as np

from memento_mcp.casebank.connection import now
from memento_mcp.casebank.learning import _VERSION_COLUMNS, _version
from memento_mcp.casebank.postgres.connection import PgConnection
from memento_mcp.casebank.postgres.schema import DIMENSIONS
from memento_mcp.errors import NotFound
from retriever.contract import HISTORY, MIN_CREDIT, History


class PgLearning(PgConnection):
    def case_history(self, case_ids: list[int], per_case: int = HISTORY) -> History:
        """Each case's latest labelled showings (see Learning.case_history), in one round trip:
        a LATERAL read per case through the covering index, instead of a query per case."""
        if not case_ids:  # no candidate worth weighing: no round trip
            return History(
                np.zeros(0, np.int64),
                np.zeros((0, DIMENSIONS), np.float32),
                np.zeros(0),
                np.zeros(0),
                np.zeros(0, np.int64),
            )
        rows = self._run(
            "SELECT c.i, r.query_vector, h.reward, h.credit, h.id"
            " FROM unnest(%s::bigint[]) WITH ORDINALITY AS c(case_id, i)"
            " CROSS JOIN LATERAL (SELECT impressions.id, impressions.request_id, impressions.reward,"
            "   coalesce(impressions.credit, 1.0) AS credit FROM impressions"
            "   WHERE impressions.case_id = c.case_id AND impressions.reward IS NOT NULL"
            "   AND coalesce(impressions.credit, 1.0) >= %s"
            "   ORDER BY impressions.id DESC LIMIT %s) AS h"
            " JOIN requests r ON r.id = h.request_id ORDER BY c.i",
            (list(case_ids), MIN_CREDIT, per_case),
        )
        # ORDER BY c.i keeps each case's rows together; within one case the LATERAL's newest
        # first order is kept because the join to requests is by primary key (a nested loop).
        queries = np.frombuffer(b"".join(row[1] for row in rows), np.float32)
        return History(
            np.array([row[0] - 1 for row in rows], dtype=np.int64),
            queries.reshape(len(rows), DIMENSIONS),
            np.array([row[2] for row in rows], dtype=np.float64),
            np.array([row[3] for row in rows], dtype=np.float64),
            np.array([row[4] for row in rows], dtype=np.int64),
        )

    def add_retriever_version(
        self, version: str, path: str, metrics: dict[str, Any], namespace: str | None = None
    ) -> None:
        """Register a trained version (inactive), with its serving weights read from beside `path`."""
        from retriever.versions import serving_path

        weights_file = serving_path(path)
        weights = weights_file.read_bytes() if weights_file.exists() else None
        with self._write() as db:
            db.run(
                "INSERT INTO retriever_versions (version, path, metrics, created_at, active,"
                " namespace, weights) VALUES (%s, %s, %s, %s, 0, %s, %s)",
                (version, path, json.dumps(metrics), now(), namespace, weights),
            )

    def activate_retriever(self, version: str) -> None:
        """Make `version` the one that serves its namespace; the swap is a single transaction."""
        with self._write() as db:
            row = db.run(
                "SELECT namespace FROM retriever_versions WHERE version = %s FOR UPDATE",
                (version,),
            ).fetchone()
            if row is None:
                raise NotFound(f"no retriever version {version!r}")
            db.run(
                "UPDATE retriever_versions SET active = 0"
                " WHERE active = 1 AND namespace IS NOT DISTINCT FROM %s",
                (row[0],),
            )
            db.run(
                "UPDATE retriever_versions SET active = 1, promoted_at = %s WHERE version = %s",
                (now(), version),
            )

    def retriever_versions(self, namespace: str | None = None) -> list[dict[str, Any]]:
        """Versions of one namespace, oldest first (None: every namespace's)."""
        rows = self._run(
            f"SELECT {_VERSION_COLUMNS}, weights IS NOT NULL FROM retriever_versions"
            " WHERE %s::text IS NULL OR namespace = %s ORDER BY created_at",
            (namespace, namespace),
        )
        return [self._local(row) for row in rows]

    def active_retriever(self, namespace: str | None = None) -> dict[str, Any] | None:
        """The version serving `namespace` (None: the most recently promoted anywhere).

        Read on every retrieval (one row), so a promotion or rollback made through any replica
        is served by this one on its next request."""
        rows = self._run(
            f"SELECT {_VERSION_COLUMNS}, weights IS NOT NULL FROM retriever_versions"
            " WHERE active = 1 AND (%s::text IS NULL OR namespace = %s)"
            " ORDER BY promoted_at DESC LIMIT 1",
            (namespace, namespace),
        )
        return self._local(rows[0]) if rows else None

    def _local(self, row: Any) -> dict[str, Any]:
        """The version's row; when its checkpoint is not on this machine (another replica
        trained it), `path` points at a copy of the database's weights in this one's cache."""
        from retriever.versions import serving_path

        version = _version(row[:7])
        if row[7] and not serving_path(version["path"] or "missing.pt").exists():
            version["path"] = str(self._materialise(version["version"]))
        return version

    def _materialise(self, version: str) -> Path:
        """`<cache>/retriever/<version>.pt`, whose serving `.npz` holds the database's weights."""
        from retriever.versions import serving_path

        path = self.cache_dir / "retriever" / f"{version}.pt"
        weights = serving_path(path)
        if not weights.exists():
            rows = self._run(
                "SELECT weights FROM retriever_versions WHERE version = %s", (version,)
            )
            if rows and rows[0][0] is not None:
                weights.parent.mkdir(parents=True, exist_ok=True)
                tmp = weights.with_name(f".{weights.name}.{secrets.token_hex(4)}.tmp")
                tmp.write_bytes(rows[0][0])
                os.replace(tmp, weights)  # versions never change: first writer wins, same bytes
        return path
