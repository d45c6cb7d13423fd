"""Candidates from Postgres: nearest task vectors (pgvector HNSW) and lexical matches (tsvector/GIN).

Dense search runs in the database, so no replica keeps vectors in memory and a write through
one replica is searchable through every other at once. pgvector 0.6 filters an HNSW scan after
the index has produced `hnsw.ef_search` candidates (no iterative scans until 0.8), so a
namespace that holds a small share of the bank would get fewer than `limit` rows back. The
search therefore widens ef_search by the namespace's share of the bank, and a namespace too
small for that (or below `exact_below` cases) is searched exactly through its own index rows.
bench/postgres.py measures the recall this gives against exact search.
"""

from __future__ import annotations

import math
import re
import time
from typing import Any

import numpy as np

from memento_mcp.casebank.lexical import _STOPWORDS, LEXICAL_BUDGET
from memento_mcp.casebank.postgres.adapters import Vector
from memento_mcp.casebank.postgres.connection import PgConnection, Row

EF_SEARCH_MIN = 100
"""ef_search at least this (pgvector's default is 40): recall@50 at 100k needs the headroom."""
EF_SEARCH_MAX = 1000  # pgvector's ceiling
EXACT_BELOW = 2_000
"""Namespaces smaller than this are scanned exactly. Lower than the SQLite bank's 20k: a scan in
Postgres reads every row and costs ~1 ms per 1k cases (12 ms at 10k on 2 cores), where the
SQLite bank multiplies a matrix already in memory (0.5 ms at 10k); HNSW costs ~1-3 ms."""
COUNTS_TTL_S = 10.0
"""How long a namespace's size is trusted: it only chooses the plan, never what is returned."""


class PgSearch(PgConnection):
    exact_below = EXACT_BELOW
    _counts: tuple[float, dict[str, int]] | None = None
    searches_vectors = True  # retrieval/index.py: search here, keep no index in memory

    def nearest(
        self, namespace: str, query: np.ndarray, limit: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """(case_ids, cosine similarities) of the `limit` nearest cases of a namespace, best first."""
        plan = self._dense_plan(namespace, limit)
        if plan is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        rows = self._search(
            plan,
            "SELECT case_id, -(vector <#> %(q)s) FROM embeddings"
            " WHERE namespace = %(ns)s ORDER BY {order} LIMIT %(n)s",
            {"q": Vector(query), "ns": namespace, "n": limit},
        )
        ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        sims = np.fromiter((row[1] for row in rows), dtype=np.float32, count=len(rows))
        return ids, sims

    def candidates(
        self, namespace: str, query: np.ndarray, limit: int, also: list[int]
    ) -> tuple[list[int], np.ndarray]:
        """What retrieval ranks, in one statement: the answered cases among the `limit` nearest
        and then `also` (each once, in that order), with their task vectors. As VectorIndex's
        `candidates`, which searches and then reads `labelled_vectors`."""
        plan = self._dense_plan(namespace, limit)
        if plan is None:  # no case in the namespace: `also` (its lexical matches) is gone too
            return [], np.zeros((0, 0), dtype=np.float32)
        # row_number() over the LIMITed scan numbers the rows in the order the search returns
        # them; `also` is numbered after every dense row, and min() keeps a case's first place.
        rows = self._search(
            plan,
            "WITH dense AS (SELECT case_id, row_number() OVER () AS i FROM (SELECT case_id"
            "  FROM embeddings WHERE namespace = %(ns)s ORDER BY {order} LIMIT %(n)s) AS near),"
            " also AS (SELECT id, %(n)s + i FROM unnest(%(also)s::bigint[])"
            "  WITH ORDINALITY AS a(id, i)),"
            " wanted AS (SELECT case_id, min(i) AS i FROM"
            "  (SELECT * FROM dense UNION ALL SELECT * FROM also) AS c GROUP BY case_id)"
            " SELECT wanted.case_id, e.vector FROM wanted"
            " JOIN embeddings e ON e.case_id = wanted.case_id"
            " JOIN cases ON cases.id = wanted.case_id"
            " WHERE cases.reward IS NOT NULL ORDER BY wanted.i",
            {"q": Vector(query), "ns": namespace, "n": limit, "also": also},
        )
        if not rows:
            return [], np.zeros((0, 0), dtype=np.float32)  # the caller knows its dimensions
        vectors = np.frombuffer(b"".join(row[1] for row in rows), dtype=np.float32)
        return [int(row[0]) for row in rows], vectors.reshape(len(rows), -1)

    def _dense_plan(self, namespace: str, limit: int) -> tuple[bool, int] | None:
        """(exact, ef_search) for a search of `limit` in the namespace; None when it is empty."""
        in_namespace, total = self._sizes(namespace)
        if in_namespace == 0:
            return None
        ef = math.ceil(max(EF_SEARCH_MIN, 2 * limit) * total / in_namespace)
        return in_namespace < self.exact_below or ef > EF_SEARCH_MAX, ef

    def _search(self, plan: tuple[bool, int], sql: str, params: dict[str, Any]) -> list[Row]:
        """Run a statement whose `{order}` is the dense search's ORDER BY, as `plan` says.

        Exact: `+ 0` makes the order an expression no index serves, so the namespace's rows
        are read through its b-tree and every distance computed. Approximate: ef_search for
        this query is set on the same connection in the same round trip (a pipeline); every
        search sets it, so what an earlier one left on a pooled connection never matters.
        """
        exact, ef = plan
        order = "(vector <#> %(q)s) + 0" if exact else "vector <#> %(q)s"
        with self._errors("read"), self.pool.connection() as conn:
            with conn.pipeline():
                if not exact:
                    conn.execute(f"SET hnsw.ef_search = {int(ef)}")
                cursor = conn.execute(sql.format(order=order), params, binary=True)
            return cursor.fetchall()

    def _sizes(self, namespace: str) -> tuple[int, int]:
        """(cases in the namespace, cases in the bank), cached for COUNTS_TTL_S."""
        cached = getattr(self, "_counts", None)
        if cached is None or time.monotonic() - cached[0] > COUNTS_TTL_S:
            rows = self._run("SELECT namespace, count(*) FROM embeddings GROUP BY namespace")
            cached = self._counts = (time.monotonic(), {row[0]: int(row[1]) for row in rows})
        counts: dict[str, int] = cached[1]
        if not counts.get(namespace):  # new, or empty, at the last count: count it now
            rows = self._run("SELECT count(*) FROM embeddings WHERE namespace = %s", (namespace,))
            counts[namespace] = int(rows[0][0])
        return counts[namespace], max(1, sum(counts.values()))

    def vector_search_status(self) -> dict[str, dict[str, object]]:
        """Per namespace: how it is searched (case_bank_stats shows this)."""
        self._counts = None
        rows = self._run("SELECT namespace, count(*) FROM embeddings GROUP BY namespace ORDER BY 1")
        total = max(1, sum(int(row[1]) for row in rows))
        status: dict[str, dict[str, object]] = {}
        for namespace, count in rows:
            ef = math.ceil(EF_SEARCH_MIN * total / max(1, count))
            exact = count < self.exact_below or ef > EF_SEARCH_MAX
            status[namespace] = {
                "cases": int(count),
                "search": "exact" if exact else "ann",
                "index": "pgvector hnsw (in the database)",
            }
        return status

    def lexical_search(self, namespace: str, query: str, limit: int) -> list[tuple[int, float]]:
        """Full-text matches over task and plan: (case_id, relevance >= 0), best first.

        As the SQLite bank's: only the query's distinctive words take part, the rarest first,
        while their matches add up to LEXICAL_BUDGET, so ranking reads a bounded set of rows.
        One statement: each word's matches are counted once (LATERAL: a scalar subquery would be
        run again wherever its column is used) up to `cap` + 1, from the GIN index's
        bitmap without reading the rows (`SELECT FROM`, no columns: Postgres skips the heap for
        pages the visibility map says are all visible), the running total picks the rare words
        as the SQLite bank's loop does (ties in the query's word order), and their OR ranks.
        """
        words = list(
            dict.fromkeys(w for w in re.findall(r"\w+", query.lower()) if w not in _STOPWORDS)
        )[:32]
        if not words:
            return []
        bank_size = self._sizes(namespace)[1]  # cached: it only sets what counts as common
        rows = self._run(
            "WITH words AS (SELECT w, i, plainto_tsquery('english', w) AS q"
            "  FROM unnest(%(words)s::text[]) WITH ORDINALITY AS u(w, i)),"
            " counted AS (SELECT q, i, n FROM words, LATERAL (SELECT count(*) AS n FROM"
            "  (SELECT FROM cases WHERE tsv @@ words.q LIMIT %(cap)s + 1) AS hits) AS c"
            "  WHERE q <> ''::tsquery),"
            " rare AS (SELECT q, sum(n) OVER (ORDER BY n, i) AS running FROM counted"
            "  WHERE n BETWEEN 1 AND %(cap)s),"
            " wanted AS (SELECT to_tsquery('english', string_agg('(' || q::text || ')', ' | '"
            "  ORDER BY running)) AS q FROM rare WHERE running <= %(budget)s)"
            " SELECT id, ts_rank(tsv, wanted.q) FROM cases, wanted"
            " WHERE tsv @@ wanted.q AND namespace = %(ns)s"
            " AND reward IS NOT NULL ORDER BY 2 DESC, id LIMIT %(limit)s",
            {
                "words": words,
                "cap": min(max(50, bank_size // 50), LEXICAL_BUDGET),
                "budget": LEXICAL_BUDGET,
                "ns": namespace,
                "limit": limit,
            },
        )
        return [(int(case_id), float(score)) for case_id, score in rows]
