"""FTS5 matches on a query's distinctive words."""

from __future__ import annotations

import re

from memento_mcp.casebank.connection import Connection

_STOPWORDS = frozenset(
    ["a", "an", "and", "are", "as", "at", "be", "by", "did", "do", "does", "for", "from", "how", "in", "is", "it", "of", "on", "or", "that", "the", "this", "to", "was", "what", "when", "where", "which", "who", "whom", "whose", "why", "will", "with"]
)


LEXICAL_BUDGET = 2000
"""At most about this many FTS5 matches are ranked by BM25 per query (the rarest words first)."""


class Lexical(Connection):
    def lexical_search(self, namespace: str, query: str, limit: int) -> list[tuple[int, float]]:
        """FTS5 BM25 matches over task and plan: (case_id, relevance >= 0), best first.

        Only the query's distinctive words take part (each in at most 2 % of cases, counted from
        FTS5's doclists in well under a millisecond): common words add little to BM25 but make
        it score every case they occur in, which costs tens of ms at 100k cases.
        """
        words = dict.fromkeys(w for w in re.findall(r"\w+", query.lower()) if w not in _STOPWORDS)
        if not words:
            return []
        bank_size = self._query("SELECT coalesce(max(id), 0) FROM cases")[0][0]
        common = max(50, bank_size // 50)
        # Counting stops past `common`, and the rarest words are kept while their matches add up
        # to LEXICAL_BUDGET: BM25 then ranks a bounded set however big the bank (issue 10: at
        # 1M cases, uncapped, it took 93 ms a query).
        counts = {
            w: self._query(
                "SELECT count(*) FROM (SELECT 1 FROM cases_fts WHERE cases_fts MATCH ? LIMIT ?)",
                (f'"{w}"', min(common, LEXICAL_BUDGET) + 1),
            )[0][0]
            for w in list(words)[:32]
        }
        rare: list[str] = []
        total = 0
        for w in sorted((w for w in counts if counts[w] <= min(common, LEXICAL_BUDGET)),
                        key=counts.__getitem__):
            if total + counts[w] > LEXICAL_BUDGET:
                break
            rare.append(w)
            total += counts[w]
        if not rare:
            return []
        match = " OR ".join(f'"{w}"' for w in rare)
        # FTS5 ranks its matches on its own first and only the best few are looked up in
        # `cases`: joining every match to filter by namespace cost 2,000 random row reads
        # (1M cases: 14 -> 5 ms). The best `limit` of the namespace are among the bank's best
        # `2 * limit` unless fewer than `limit` of those are the namespace's own; then (a small
        # namespace in a big bank) every match is joined.
        shortlist = 2 * limit
        rows = self._query(
            "SELECT cases.id, top.score FROM (SELECT rowid, -rank AS score FROM cases_fts"
            " WHERE cases_fts MATCH ? ORDER BY rank LIMIT ?) AS top"
            " JOIN cases ON cases.id = top.rowid"
            " WHERE cases.namespace = ? AND cases.reward IS NOT NULL ORDER BY top.score DESC",
            (match, shortlist, namespace),
        )
        if len(rows) < limit and total > shortlist:
            rows = self._query(
                "SELECT cases.id, -bm25(cases_fts) FROM cases_fts"
                " JOIN cases ON cases.id = cases_fts.rowid"
                " WHERE cases_fts MATCH ? AND cases.namespace = ? AND cases.reward IS NOT NULL"
                " ORDER BY bm25(cases_fts) LIMIT ?",
                (match, namespace, limit),
            )
        return [(int(case_id), float(score)) for case_id, score in rows[:limit]]
