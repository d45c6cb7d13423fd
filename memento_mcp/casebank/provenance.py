"""Who taught what: outcomes and cases by client, and removing one client's teaching (issue 12)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from memento_mcp.casebank.cases import _delete_cases, _json
from memento_mcp.casebank.connection import Connection, now
from memento_mcp.models import POSITIVE_REWARD


class Provenance(Connection):
    def teachers(self, namespaces: Collection[str] | None = None) -> list[dict[str, Any]]:
        """Per client: outcomes reported, how many positive, mean reward, cases written, last
        outcome; most outcomes first. Within `namespaces` (None: all). Client None: not
        recorded (imports, and rows from before schema v5)."""
        allowed = None if namespaces is None else _json(namespaces)
        # SQL both dialects read: CASE instead of summing booleans, a typed NULL test.
        rows = self._query(
            "SELECT client, sum(outcomes), sum(positive), sum(reward_sum), sum(cases), max(last)"
            " FROM ("
            "  SELECT outcomes.client_id AS client,"
            "   count(*) AS outcomes,"
            "   sum(CASE WHEN outcomes.reward >= ? THEN 1 ELSE 0 END) AS positive,"
            "   sum(outcomes.reward) AS reward_sum, 0 AS cases, max(outcomes.recorded_at) AS last"
            "  FROM outcomes LEFT JOIN cases ON cases.id = outcomes.case_id"
            "  LEFT JOIN requests ON requests.id = outcomes.request_id"
            "  WHERE CAST(? AS TEXT) IS NULL OR coalesce(cases.namespace, requests.namespace)"
            f"   IN ({self.json_items_sql})"
            "  GROUP BY outcomes.client_id"
            "  UNION ALL"
            "  SELECT client_id, 0, 0, 0, count(*), NULL"
            f"  FROM cases WHERE CAST(? AS TEXT) IS NULL OR namespace IN ({self.json_items_sql})"
            "  GROUP BY client_id"
            ") AS taught GROUP BY client ORDER BY sum(outcomes) DESC, client NULLS FIRST",
            (POSITIVE_REWARD, allowed, allowed, allowed, allowed),
        )
        return [
            {
                "client_id": row[0],
                "outcomes": int(row[1]),
                "positive": int(row[2] or 0),
                "mean_reward": (float(row[3]) / int(row[1])) if row[1] else None,
                "cases": int(row[4]),
                "last_outcome": row[5],
            }
            for row in rows
        ]

    def case_outcomes(self, case_id: int) -> list[dict[str, Any]]:
        """Every outcome that taught this case: reported on it, or labelling a showing of it."""
        rows = self._query(
            "SELECT outcomes.client_id, outcomes.reward, NULL, outcomes.request_id,"
            " outcomes.recorded_at FROM outcomes WHERE outcomes.case_id = ?"
            " UNION ALL"
            " SELECT outcomes.client_id, impressions.reward, impressions.credit,"
            " impressions.request_id, outcomes.recorded_at"
            " FROM impressions JOIN outcomes ON outcomes.request_id = impressions.request_id"
            " WHERE impressions.case_id = ? AND impressions.reward IS NOT NULL"
            " ORDER BY 5 DESC LIMIT 200",
            (case_id, case_id),
        )
        keys = ("client_id", "reward", "credit", "request_id", "recorded_at")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def revoke_client(self, client_id: str, since: str) -> dict[str, Any]:
        """Remove what `client_id` taught from `since` (an ISO UTC time) on, in one transaction:
        its outcomes, the labels they put on shown cases (the cases stay, unlabelled by it), the
        rewards they gave to pending solve_task cases, and the cases it wrote.

        Returns counts and the namespaces touched (their retrievers need retraining).
        """
        with self._write() as db:
            outcomes = db.execute(
                "SELECT outcomes.id, outcomes.request_id, outcomes.case_id, requests.namespace"
                " FROM outcomes LEFT JOIN requests ON requests.id = outcomes.request_id"
                " WHERE outcomes.client_id = ? AND outcomes.recorded_at >= ?",
                (client_id, since),
            ).fetchall()
            namespaces = {row[3] for row in outcomes if row[3] is not None}
            labels = 0
            for _, request_id, case_id, _ in (row for row in outcomes if row[1] is not None):
                labels += db.execute(
                    "UPDATE impressions SET reward = NULL, credit = NULL, labelled_at = NULL"
                    " WHERE request_id = ? AND reward IS NOT NULL",
                    (request_id,),
                ).rowcount
                if case_id is not None:  # a solve_task case this outcome gave its reward
                    db.execute(
                        "UPDATE cases SET reward = NULL WHERE id = ? AND request_id = ?",
                        (case_id, request_id),
                    )
            cases = db.execute(
                "SELECT id, namespace FROM cases WHERE client_id = ? AND created_at >= ?",
                (client_id, since),
            ).fetchall()
            namespaces |= {row[1] for row in cases}
            _delete_cases(db, [int(row[0]) for row in cases])
            db.conn.executemany("DELETE FROM outcomes WHERE id = ?", [(row[0],) for row in outcomes])
            db.execute(
                "INSERT INTO revocations (client_id, since, revoked_at) VALUES (?, ?, ?)",
                (client_id, since, now()),
            )
        return {
            "outcomes": len(outcomes),
            "labels": labels,
            "cases": len(cases),
            "namespaces": sorted(namespaces),
        }

    def deactivate_retriever(self, namespace: str) -> None:
        """No trained prior serves `namespace` any more (rankings fall back to evidence alone)."""
        with self._write() as db:
            db.execute(
                "UPDATE retriever_versions SET active = 0"
                " WHERE namespace IS NOT DISTINCT FROM ? AND active = 1",
                (namespace,),
            )
