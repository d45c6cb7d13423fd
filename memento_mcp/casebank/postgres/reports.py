"""Overviews on Postgres: the SQLite bank's reports (casebank/reports.py) in Postgres's dialect.

SQLite sums booleans and searches FTS5 with prefix queries; Postgres counts with FILTER and
matches prefixes with to_tsquery's `:*`. The results have the same shape, key for key.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any, Literal

from memento_mcp.casebank.cases import _CASE_COLUMNS, SELECT_CASES, _case_from_row
from memento_mcp.casebank.postgres.connection import PgConnection
from memento_mcp.casebank.postgres.schema import SCHEMA_VERSION
from memento_mcp.casebank.reports import impressions_in
from memento_mcp.models import POSITIVE_REWARD, Case

_OUTCOMES_IN = (
    " FROM outcomes LEFT JOIN cases ON cases.id = outcomes.case_id"
    " LEFT JOIN requests ON requests.id = outcomes.request_id"
    " WHERE (%(ns)s::text IS NULL OR coalesce(cases.namespace, requests.namespace) = %(ns)s)"
    " AND (%(allowed)s::text[] IS NULL"
    "  OR coalesce(cases.namespace, requests.namespace) = ANY(%(allowed)s))"
)


class PgReports(PgConnection):
    def stats(self, namespaces: Collection[str] | None = None) -> dict[str, Any]:
        """Counts per namespace and in all; with `namespaces`, of those namespaces only."""
        scope = "" if namespaces is None else " WHERE namespace = ANY(%(allowed)s)"
        params = {"allowed": _listed(namespaces)}
        namespace_rows = self._run(
            "SELECT namespace, count(*), count(*) FILTER (WHERE reward >= 0.5),"
            " count(*) FILTER (WHERE reward < 0.5), count(*) FILTER (WHERE reward IS NULL)"
            f" FROM cases{scope} GROUP BY namespace ORDER BY namespace",
            params,
        )
        shown, labelled = impressions_in(scope)
        totals = self._run(
            f"SELECT (SELECT count(*) FROM requests{scope}), (SELECT count(*) FROM {shown}),"
            f" (SELECT count(*) FROM {shown} {labelled})",
            params,
        )[0]
        return {
            "path": self.path,
            "read_only": self.read_only,
            "schema_version": SCHEMA_VERSION,
            "cases": sum(int(row[1]) for row in namespace_rows),
            "requests": int(totals[0]),
            "impressions": int(totals[1]),
            "labelled_impressions": int(totals[2]),
            "namespaces": [
                {
                    "namespace": row[0],
                    "cases": int(row[1]),
                    "positive": int(row[2]),
                    "negative": int(row[3]),
                    "pending": int(row[4]),
                }
                for row in namespace_rows
            ],
        }

    def list_cases(
        self,
        namespace: str | None = None,
        search: str | None = None,
        label: Literal["positive", "negative", "pending"] | None = None,
        min_reward: float | None = None,
        limit: int = 50,
        offset: int = 0,
        namespaces: Collection[str] | None = None,
    ) -> tuple[list[Case], int]:
        """One page of cases, newest first, and how many match (see Reports.list_cases)."""
        where: list[str] = ["true"]
        params: list[Any] = []
        if namespace is not None:
            where.append("namespace = %s")
            params.append(namespace)
        if namespaces is not None:
            where.append("namespace = ANY(%s)")
            params.append(_listed(namespaces))
        if label == "pending":
            where.append("reward IS NULL")
        elif label is not None:
            where.append("reward >= %s" if label == "positive" else "reward < %s")
            params.append(POSITIVE_REWARD)
        if min_reward is not None:
            where.append("reward >= %s")
            params.append(min_reward)
        words = re.findall(r"\w+", (search or "").lower())[:16]
        if words:
            # every word as a prefix; \w+ words hold no tsquery syntax, and are quoted anyway
            where.append("tsv @@ to_tsquery('english', %s)")
            params.append(" & ".join(f"'{word}':*" for word in words))
        condition = " AND ".join(where)
        total = int(self._run(f"SELECT count(*) FROM cases WHERE {condition}", params)[0][0])
        rows = self._run(
            f"{SELECT_CASES} WHERE {condition} ORDER BY id DESC LIMIT %s OFFSET %s",
            [*params, limit, offset],
        )
        cases = [_case_from_row(dict(zip(_CASE_COLUMNS, row, strict=True))) for row in rows]
        return cases, total

    def outcomes_by_day(
        self, namespace: str | None = None, namespaces: Collection[str] | None = None
    ) -> list[dict[str, Any]]:
        """Outcomes recorded per UTC day, oldest first: how many, how many positive, mean reward."""
        rows = self._run(
            "SELECT substr(outcomes.recorded_at, 1, 10) AS day, count(*),"
            " count(*) FILTER (WHERE outcomes.reward >= %(positive)s), avg(outcomes.reward)"
            + _OUTCOMES_IN
            + " GROUP BY day ORDER BY day",
            {"positive": POSITIVE_REWARD, "ns": namespace, "allowed": _listed(namespaces)},
        )
        keys = ("day", "outcomes", "positive", "mean_reward")
        return [
            dict(zip(keys, (row[0], int(row[1]), int(row[2]), float(row[3])), strict=True))
            for row in rows
        ]

    def reward_curve(
        self,
        namespace: str | None = None,
        points: int = 40,
        per_point: int = 5,
        namespaces: Collection[str] | None = None,
    ) -> list[dict[str, Any]]:
        """The learning curve (see Reports.reward_curve)."""
        rows = self._run(
            "SELECT max(n), avg(reward) FROM ("
            " SELECT outcomes.reward AS reward, row_number() OVER (ORDER BY outcomes.id) AS n,"
            " (row_number() OVER (ORDER BY outcomes.id) - 1)"
            "  * least(%(points)s, greatest(1, count(*) OVER () / %(per)s)) / count(*) OVER ()"
            "  AS slice" + _OUTCOMES_IN + ") AS sliced GROUP BY slice ORDER BY slice",
            {"points": points, "per": per_point, "ns": namespace,
             "allowed": _listed(namespaces)},  # fmt: skip
        )
        return [{"outcomes": int(row[0]), "mean_reward": float(row[1])} for row in rows]


def _listed(namespaces: Collection[str] | None) -> list[str] | None:
    return None if namespaces is None else sorted(namespaces)
