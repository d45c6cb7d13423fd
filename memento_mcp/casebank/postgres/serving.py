"""What every retrieval reads and logs, on Postgres: one statement each, whose text never changes.

The shared SQL (casebank/) lists ids as `IN (?, ?, ...)`, so on Postgres its text changes with
the number of ids: each such read was parsed and planned anew (0.3-0.5 ms of the server's CPU
at 100k cases), and psycopg never prepared it. Here ids travel as one array (`= ANY`, or
`unnest ... WITH ORDINALITY` where the order matters), so the text is fixed, psycopg prepares it
after a few runs and Postgres plans it once per connection. The request log, a transaction of
three to four round trips through the shared code, is one statement here: a single statement is
atomic on its own, so it still writes the request and its impressions together or not at all.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from memento_mcp.casebank.cases import _CASE_COLUMNS, SELECT_CASES, _case_from_row
from memento_mcp.casebank.connection import now, to_blob
from memento_mcp.casebank.feedback import Impression
from memento_mcp.casebank.postgres.connection import PgConnection
from memento_mcp.models import Case


class PgServing(PgConnection):
    def labelled_vectors(self, case_ids: list[int]) -> tuple[list[int], np.ndarray]:
        """As Vectors.labelled_vectors: the cases among `case_ids` that exist and have a reward,
        in the order given, and their (N, D) task embeddings."""
        if not case_ids:
            return [], np.zeros((0, 0), dtype=np.float32)
        rows = self._run(
            "SELECT c.id, e.vector FROM unnest(%s::bigint[]) WITH ORDINALITY AS c(id, i)"
            " JOIN embeddings e ON e.case_id = c.id JOIN cases ON cases.id = c.id"
            " WHERE cases.reward IS NOT NULL ORDER BY c.i",
            (case_ids,),
        )
        if not rows:
            return [], np.zeros((0, 0), dtype=np.float32)  # the caller knows its dimensions
        vectors = np.frombuffer(b"".join(row[1] for row in rows), dtype=np.float32)
        return [int(row[0]) for row in rows], vectors.reshape(len(rows), -1)

    def _where_case_in(self, sql: str, case_ids: list[int]) -> list[Any]:
        """As Learning._where_case_in, with the ids as one array: the statement's text stays the
        same whatever their number, so Postgres plans it once (a prepared statement)."""
        return self._run(f"{sql} = ANY(%s::bigint[])", (list(case_ids),))

    def cases_by_id(self, case_ids: list[int]) -> dict[int, Case]:
        if not case_ids:
            return {}
        rows = self._run(f"{SELECT_CASES} WHERE id = ANY(%s::bigint[])", (case_ids,))
        cases = [_case_from_row(dict(zip(_CASE_COLUMNS, row, strict=True))) for row in rows]
        return {case.case_id: case for case in cases}

    def log_request(
        self,
        request_id: str,
        namespace: str,
        query: str,
        query_vector: np.ndarray,
        scorer: str,
        impressions: list[Impression],
        source: str = "retrieve_cases",
        client_id: str | None = None,
    ) -> bool:
        """As Feedback.log_request, in one statement: False, writing nothing, when request_id is
        already logged. Impressions get their ids in the order given (ORDER BY the ordinality).
        It commits durably like every other write: a returned request_id must find its request
        when its outcome arrives, even after the database server crashes.
        """
        self.require_writable()
        with self._errors("write"), self.pool.connection() as conn:
            cursor = conn.execute(
                "WITH request AS (INSERT INTO requests"
                "  (id, namespace, query, query_vector, scorer, source, created_at, client_id)"
                "  VALUES (%(id)s, %(ns)s, %(query)s, %(vector)s, %(scorer)s, %(source)s, %(stamp)s,"
                "  %(client)s)"
                "  ON CONFLICT (id) DO NOTHING RETURNING id),"
                " shown AS (INSERT INTO impressions (request_id, case_id, rank, score, similarity,"
                "  propensity, reward, credit, labelled_at)"
                "  SELECT request.id, s.case_id, s.rank, s.score, s.similarity, s.propensity, s.reward,"
                "  CASE WHEN s.reward IS NULL THEN NULL ELSE 1.0 END,"
                "  CASE WHEN s.reward IS NULL THEN NULL ELSE %(stamp)s END"
                "  FROM request, unnest(%(case_ids)s::bigint[], %(ranks)s::integer[],"
                "   %(scores)s::float8[], %(similarities)s::float8[], %(propensities)s::float8[],"
                "   %(rewards)s::float8[])"
                "   WITH ORDINALITY AS s(case_id, rank, score, similarity, propensity, reward, i)"
                "  ORDER BY s.i)"
                " SELECT count(*) FROM request",
                {
                    "id": request_id,
                    "ns": namespace,
                    "query": query,
                    "vector": to_blob(query_vector),
                    "scorer": scorer,
                    "source": source,
                    "stamp": now(),
                    "client": client_id,
                    "case_ids": [shown.case_id for shown in impressions],
                    "ranks": [shown.rank for shown in impressions],
                    "scores": [shown.score for shown in impressions],
                    "similarities": [shown.similarity for shown in impressions],
                    "propensities": [shown.propensity for shown in impressions],
                    "rewards": [shown.reward for shown in impressions],
                },
                binary=True,
            )
            row = cursor.fetchone()
        return bool(row and row[0])
