"""Requests, what each showed (impressions), and the outcomes that label them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from memento_mcp.casebank.cases import Cases, NewCase
from memento_mcp.casebank.connection import from_blob, now, to_blob
from memento_mcp.errors import Conflict, NotFound
from retriever.contract import credit_shares


@dataclass
class Impression:
    """One case shown for one request, with what the policy knew when it showed it."""

    case_id: int
    rank: int
    score: float
    similarity: float
    propensity: float = 1.0
    reward: float | None = None  # set only by imports of already-labelled pairs

class Feedback(Cases):
    _insert_request_sql = (  # the Postgres bank says ON CONFLICT DO NOTHING instead
        "INSERT OR IGNORE INTO requests (id, namespace, query, query_vector, scorer,"
        " source, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
    )

    def log_request(
        self,
        request_id: str,
        namespace: str,
        query: str,
        query_vector: np.ndarray,
        scorer: str,
        impressions: list[Impression],
        source: str = "retrieve_cases",
    ) -> bool:
        """Remember what was shown to whom, so that a later reward can label it.

        Returns False, writing nothing, when request_id is already logged (re-imports).
        """
        stamp = now()
        with self._write() as db:
            inserted = db.execute(
                self._insert_request_sql,
                (request_id, namespace, query, to_blob(query_vector), scorer, source, stamp),
            ).rowcount
            if not inserted:
                return False
            db.conn.executemany(
                "INSERT INTO impressions (request_id, case_id, rank, score, similarity,"
                " propensity, reward, credit, labelled_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        request_id,
                        shown.case_id,
                        shown.rank,
                        shown.score,
                        shown.similarity,
                        shown.propensity,
                        shown.reward,
                        None if shown.reward is None else 1.0,
                        None if shown.reward is None else stamp,
                    )
                    for shown in impressions
                ],
            )
        return True

    def known_requests(self, request_ids: list[str]) -> set[str]:
        marks = ",".join("?" * len(request_ids))
        rows = self._query(f"SELECT id FROM requests WHERE id IN ({marks})", request_ids)
        return {row[0] for row in rows}

    def get_request(self, request_id: str) -> dict[str, Any]:
        rows = self._query(
            "SELECT id, namespace, query, scorer, source, created_at FROM requests WHERE id = ?",
            (request_id,),
        )
        if not rows:
            raise NotFound(
                f"unknown request_id {request_id!r}: pass the request_id that retrieve_cases or"
                " solve_task returned, or record a free-standing outcome with task, plan, answer"
            )
        keys = ("request_id", "namespace", "query", "scorer", "source", "created_at")
        return dict(zip(keys, rows[0], strict=True))

    def request_vector(self, request_id: str) -> np.ndarray:
        row = self._query("SELECT query_vector FROM requests WHERE id = ?", (request_id,))
        if not row:
            raise NotFound(f"unknown request_id {request_id!r}")
        return from_blob(row[0][0])

    def shown_case_ids(self, request_id: str) -> list[int]:
        rows = self._query(
            "SELECT case_id FROM impressions WHERE request_id = ? ORDER BY rank", (request_id,)
        )
        return [int(row[0]) for row in rows]

    def record_outcome(
        self,
        reward: float,
        request_id: str | None,
        new_case: tuple[NewCase, np.ndarray] | None,
        used_case_ids: list[int] | None,
    ) -> tuple[int | None, int]:
        """Store the outcome, its case and the impression labels in one transaction.

        With a request_id whose solve_task case is pending, that case gets the reward instead of
        a new case being written. Returns (case_id, impressions labelled).
        """
        stamp = now()
        with self._write() as db:
            case_id: int | None = None
            labelled = 0
            if request_id is not None:
                previous = db.execute(
                    "SELECT case_id FROM outcomes WHERE request_id = ?", (request_id,)
                ).fetchone()
                if previous:
                    raise Conflict(
                        f"the outcome of request {request_id} was already recorded"
                        f" (case_id {previous[0]}); nothing was changed"
                    )
                pending = db.execute(
                    "SELECT id FROM cases WHERE request_id = ? AND reward IS NULL", (request_id,)
                ).fetchone()
                if pending:
                    case_id = int(pending[0])
                    db.execute(
                        "UPDATE cases SET reward = ?, updated_at = ? WHERE id = ?",
                        (reward, stamp, case_id),
                    )
                shown = [
                    int(row[0])
                    for row in db.execute(
                        "SELECT case_id FROM impressions WHERE request_id = ? ORDER BY rank",
                        (request_id,),
                    )
                ]
                shares = credit_shares(shown, used_case_ids)
                db.conn.executemany(
                    "UPDATE impressions SET reward = ?, credit = ?, labelled_at = ?"
                    " WHERE request_id = ? AND case_id = ?",
                    [(reward, share, stamp, request_id, case) for case, share in shares.items()],
                )
                labelled = len(shares)
            if case_id is None and new_case is not None:
                case_id, _ = self._insert_case(db, *new_case)
            db.execute(
                "INSERT INTO outcomes (request_id, case_id, reward, used_case_ids, recorded_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    request_id,
                    case_id,
                    reward,
                    None if used_case_ids is None else json.dumps(used_case_ids),
                    stamp,
                ),
            )
        return case_id, labelled

    def labelled_count(self, namespace: str | None = None) -> int:
        sql = "SELECT count(*) FROM impressions"
        if namespace is None:
            return int(self._query(sql + " WHERE reward IS NOT NULL")[0][0])
        sql += " JOIN requests ON requests.id = impressions.request_id"
        sql += " WHERE impressions.reward IS NOT NULL AND requests.namespace = ?"
        return int(self._query(sql, (namespace,))[0][0])

    def iter_labelled_pairs(self, namespace: str | None = None) -> Iterator[dict[str, Any]]:
        """Labelled impressions joined with their query and case, in insertion order."""
        sql = (
            "SELECT requests.query, impressions.case_id, impressions.reward"
            " FROM impressions JOIN requests ON requests.id = impressions.request_id"
            " WHERE impressions.reward IS NOT NULL"
        )
        params: list[Any] = []
        if namespace is not None:
            sql += " AND requests.namespace = ?"
            params.append(namespace)
        for query, case_id, reward in self._query(sql + " ORDER BY impressions.id", params):
            yield {"query": query, "case_id": int(case_id), "reward": float(reward)}
