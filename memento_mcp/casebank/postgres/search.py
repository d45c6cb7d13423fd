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

import numpy as np

from memento_mcp.casebank.lexical import _STOPWORDS, LEXICAL_BUDGET
from memento_mcp.casebank.postgres.adapters import Vector
from memento_mcp.casebank.postgres.connection import PgConnection

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
        in_namespace, total = self._sizes(namespace)
        if in_namespace == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        ef = math.ceil(max(EF_SEARCH_MIN, 2 * limit) * total / in_namespace)
        exact = in_namespace < self.exact_below or ef > EF_SEARCH_MAX
        # Exact: `+ 0` makes the order an expression no index serves, so the namespace's rows
        # are read through its b-tree and every distance computed. Approximate: ef_search for
        # this query is set on the same connection in the same round trip (a pipeline); every
        # search sets it, so what an earlier one left on a pooled connection never matters.
        order = "(vector <#> %(q)s) + 0" if exact else "vector <#> %(q)s"
        with self._errors("read"), self.pool.connection() as conn:
            with conn.pipeline():
                if not exact:
                    conn.execute(f"SET hnsw.ef_search = {int(ef)}")
                cursor = conn.execute(
                    "SELECT case_id, -(vector <#> %(q)s) FROM embeddings"
                    f" WHERE namespace = %(ns)s ORDER BY {order} LIMIT %(n)s",
                    {"q": Vector(query), "ns": namespace, "n": limit},
                    binary=True,
                )
            rows = cursor.fetchall()
        ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        sims = np.fromiter((row[1] for row in rows), dtype=np.float32, count=len(rows))
        return ids, sims

    def _sizes(self, namespace: str) -> tuple[int, int]:
        """(cases in the namespace, cases in the bank), cached for COUNTS_TTL_S."""
        cached = getattr(self, "_counts", None)
        if cached is None or time.monotonic() - cached[0] > COUNTS_TTL_S:
            rows = self._run("SELECT namespace, count(*) FROM embeddings GROUP BY namespace")
            cached = self._counts = (time.monotonic(), {row[0]: int(row[1]) for row in rows})
        counts: dict[str, int] = cached[1]
        if namespace not in counts:  # new since the last count: count it now
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
        One statement: each word's matches are counted (up to `cap` + 1) from the GIN index's
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
            " counted AS (SELECT q, i, (SELECT count(*) FROM (SELECT FROM cases"
            "  WHERE tsv @@ words.q LIMIT %(cap)s + 1) AS hits) AS n"
            "  FROM words WHERE q <> ''::tsquery),"
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
