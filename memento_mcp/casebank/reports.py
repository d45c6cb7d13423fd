"""Overviews: counts per namespace, pages of cases, outcomes over time (CLI and dashboard)."""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any, Literal

from memento_mcp.casebank.cases import _CASE_COLUMNS, _case_from_row, _json
from memento_mcp.casebank.connection import Connection
from memento_mcp.casebank.schema import SCHEMA_VERSION
from memento_mcp.models import POSITIVE_REWARD, Case


class Reports(Connection):
    def stats(self, namespaces: Collection[str] | None = None) -> dict[str, Any]:
        """Counts per namespace and in all; with `namespaces`, of those namespaces only."""
        scope = "" if namespaces is None else " WHERE namespace IN (SELECT value FROM json_each(?))"
        params = [] if namespaces is None else [_json(namespaces)]
        namespace_rows = self._query(
            "SELECT namespace, count(*), sum(reward >= 0.5), sum(reward < 0.5),"
            f" sum(reward IS NULL) FROM cases{scope} GROUP BY namespace ORDER BY namespace",
            params,
        )
        shown, labelled = impressions_in(scope)
        return {
            "path": self.path,
            "read_only": self.read_only,
            "schema_version": SCHEMA_VERSION,
            "cases": sum(row[1] for row in namespace_rows),
            "requests": self._query(f"SELECT count(*) FROM requests{scope}", params)[0][0],
            "impressions": self._query(f"SELECT count(*) FROM {shown}", params)[0][0],
            "labelled_impressions": self._query(
                f"SELECT count(*) FROM {shown} {labelled}", params
            )[0][0],
            "namespaces": [
                {
                    "namespace": row[0],
                    "cases": row[1],
                    "positive": row[2] or 0,
                    "negative": row[3] or 0,
                    "pending": row[4] or 0,
                }
                for row in namespace_rows
            ],
        }

    # -- browsing (the dashboard, issue 6) ---------------------------------------------------

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
        """One page of cases, newest first, and how many match in all.

        `search` keeps cases whose task or plan holds every word (as a prefix: "dun" finds
        "Dune"), through the FTS5 index, so it stays fast on a large bank.
        """
        where: list[str] = ["1 = 1"]
        params: list[Any] = []
        if namespace is not None:
            where.append("namespace = ?")
            params.append(namespace)
        if namespaces is not None:
            where.append("namespace IN (SELECT value FROM json_each(?))")
            params.append(_json(namespaces))
        if label == "pending":
            where.append("reward IS NULL")
        elif label is not None:
            where.append("reward >= ?" if label == "positive" else "reward < ?")
            params.append(POSITIVE_REWARD)
        if min_reward is not None:
            where.append("reward >= ?")
            params.append(min_reward)
        words = re.findall(r"\w+", (search or "").lower())[:16]
        if words:
            where.append("id IN (SELECT rowid FROM cases_fts WHERE cases_fts MATCH ?)")
            params.append(" ".join(f'"{word}"*' for word in words))
        condition = " AND ".join(where)
        total = int(self._query(f"SELECT count(*) FROM cases WHERE {condition}", params)[0][0])
        rows = self._query(
            f"SELECT * FROM cases WHERE {condition} ORDER BY id DESC LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        cases = [_case_from_row(dict(zip(_CASE_COLUMNS, row, strict=True))) for row in rows]
        return cases, total

    def outcomes_by_day(
        self, namespace: str | None = None, namespaces: Collection[str] | None = None
    ) -> list[dict[str, Any]]:
        """Outcomes recorded per UTC day, oldest first: how many, how many positive, mean reward."""
        rows = self._query(
            "SELECT substr(outcomes.recorded_at, 1, 10) AS day, count(*),"
            " sum(outcomes.reward >= ?), avg(outcomes.reward)"
            + _OUTCOMES_IN
            + " GROUP BY day ORDER BY day",
            (POSITIVE_REWARD, *_scope(namespace, namespaces)),
        )
        keys = ("day", "outcomes", "positive", "mean_reward")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def reward_curve(
        self,
        namespace: str | None = None,
        points: int = 40,
        per_point: int = 5,
        namespaces: Collection[str] | None = None,
    ) -> list[dict[str, Any]]:
        """The learning curve: the outcome history cut into consecutive slices, oldest first,
        each with its mean reward and the number of outcomes recorded up to its end.

        At most `points` slices, and at least `per_point` outcomes in each, so that a short
        history is not a zigzag of single 0/1 rewards.
        """
        rows = self._query(
            "SELECT max(n), avg(reward) FROM ("
            " SELECT outcomes.reward AS reward, row_number() OVER (ORDER BY outcomes.id) AS n,"
            " (row_number() OVER (ORDER BY outcomes.id) - 1)"
            "  * min(?, max(1, count(*) OVER () / ?)) / count(*) OVER () AS slice"
            + _OUTCOMES_IN
            + ") GROUP BY slice ORDER BY slice",
            (points, per_point, *_scope(namespace, namespaces)),
        )
        return [{"outcomes": int(row[0]), "mean_reward": float(row[1])} for row in rows]


def impressions_in(scope: str) -> tuple[str, str]:
    """What follows FROM to count the impressions of requests within `scope` (a WHERE on the
    namespace, or "" for all), and the condition that keeps the labelled ones. Unscoped, they
    are counted without the join, so the bank-wide figures stay cheap."""
    shown = "impressions"
    if scope:
        shown += " JOIN requests ON requests.id = impressions.request_id" + scope
    return shown, ("AND" if scope else "WHERE") + " impressions.reward IS NOT NULL"


_OUTCOMES_IN = (
    " FROM outcomes LEFT JOIN cases ON cases.id = outcomes.case_id"
    " LEFT JOIN requests ON requests.id = outcomes.request_id"
    " WHERE (? IS NULL OR coalesce(cases.namespace, requests.namespace) = ?)"
    " AND (? IS NULL OR coalesce(cases.namespace, requests.namespace)"
    "  IN (SELECT value FROM json_each(?)))"
)
"""Outcomes, in one namespace or (parameter None) all, and within a set of namespaces or (None)
all: a free-standing outcome has its case's namespace, a label-only one its request's."""


def _scope(namespace: str | None, namespaces: Collection[str] | None) -> tuple[Any, ...]:
    allowed = None if namespaces is None else _json(namespaces)
    return namespace, namespace, allowed, allowed
