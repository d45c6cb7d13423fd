"""Requests, what each showed (impressions), and the outcomes that label them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlite_utils

from memento_mcp.casebank.cases import Cases, NewCase, content_hash
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


@dataclass
class Recorded:
    """What the bank holds after record_outcome: the outcome's case, labels and provenance."""

    case_id: int | None
    labelled: int  # impressions this outcome labels
    reward: float  # the reward the outcome carries (a duplicate's: the first report's)
    case_reward: float | None  # what the case holds now
    duplicate: bool  # this client had reported it already: nothing was written
    client_id: str | None
    recorded_at: str


class Feedback(Cases):
    _insert_request_sql = (  # the Postgres bank logs in one statement (postgres/serving.py)
        "INSERT OR IGNORE INTO requests (id, namespace, query, query_vector, scorer,"
        " source, created_at, client_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
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
        client_id: str | None = None,
    ) -> bool:
        """Remember what was shown to whom, so that a later reward can label it.

        Returns False, writing nothing, when request_id is already logged (re-imports).
        """
        stamp = now()
        unlabelled = all(shown.reward is None for shown in impressions)  # imports bring rewards
        with self._write(retrieval_log=unlabelled) as db:
            inserted = db.execute(
                self._insert_request_sql,
                (request_id, namespace, query, to_blob(query_vector), scorer, source, stamp,
                 client_id),  # fmt: skip
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
            "SELECT id, namespace, query, scorer, source, created_at, client_id FROM requests"
            " WHERE id = ?",
            (request_id,),
        )
        if not rows:
            raise unknown_request(request_id)
        keys = ("request_id", "namespace", "query", "scorer", "source", "created_at", "client_id")
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
        client_id: str | None = None,
    ) -> Recorded:
        """Store the outcome, its case and the impression labels in one transaction.

        With a request_id whose solve_task case is pending, that case gets the reward instead of
        a new case being written. An outcome is kept once per (request, case, client): the same
        client reporting it again with the same reward gets the first receipt back (`duplicate`)
        and writes nothing; with a different reward it is refused (Conflict), so a stored
        reward cannot be flipped by repeating a report. A free-standing case that another client
        already stored keeps its reward; the new outcome row only records who said what.
        """
        stamp = now()
        with self._write() as db:
            if request_id is not None:
                previous = db.execute(
                    "SELECT case_id, reward, client_id, recorded_at FROM outcomes"
                    " WHERE request_id = ?",
                    (request_id,),
                ).fetchone()
                if previous:
                    return _repeat(db, previous, reward, client_id, request_id)
            elif new_case is not None:
                case, _ = new_case
                existing = db.execute(
                    "SELECT id FROM cases WHERE namespace = ? AND content_hash = ?",
                    (case.namespace, content_hash(case.task, case.plan, case.answer)),
                ).fetchone()
                previous = existing and db.execute(
                    "SELECT case_id, reward, client_id, recorded_at FROM outcomes"
                    " WHERE case_id = ? AND request_id IS NULL AND client_id IS NOT DISTINCT FROM ?",
                    (existing[0], client_id),
                ).fetchone()
                if previous:
                    return _repeat(db, previous, reward, client_id, None)
            case_id: int | None = None
            labelled = 0
            if request_id is not None:
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
                "INSERT INTO outcomes (request_id, case_id, reward, used_case_ids, recorded_at,"
                " client_id) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    request_id,
                    case_id,
                    reward,
                    None if used_case_ids is None else json.dumps(used_case_ids),
                    stamp,
                    client_id,
                ),
            )
            return Recorded(case_id, labelled, reward, _case_reward(db, case_id), False,
                            client_id, stamp)  # fmt: skip

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


def unknown_request(request_id: str) -> NotFound:
    """The one error for a request_id that names nothing this caller may report on."""
    return NotFound(
        f"unknown request_id {request_id!r}: pass the request_id that retrieve_cases or"
        " solve_task returned, or record a free-standing outcome with task, plan, answer"
    )


def _repeat(
    db: sqlite_utils.Database,
    previous: tuple[Any, ...],
    reward: float,
    client_id: str | None,
    request_id: str | None,
) -> Recorded:
    """A report of an outcome already recorded: the first receipt again, or a Conflict."""
    case_id, first_reward, first_client, recorded_at = previous
    if first_client != client_id or first_reward != reward:
        by = "by another client" if first_client != client_id else "by you"
        what = f"request {request_id}" if request_id else f"case {case_id}"
        raise Conflict(
            f"the outcome of {what} was already recorded {by} with reward {first_reward}"
            f" at {recorded_at} (case_id {case_id}); nothing was changed"
        )
    labelled = 0
    if request_id is not None:
        labelled = db.execute(
            "SELECT count(*) FROM impressions WHERE request_id = ? AND reward IS NOT NULL",
            (request_id,),
        ).fetchone()[0]
    return Recorded(case_id, int(labelled), float(first_reward), _case_reward(db, case_id),
                    True, client_id, recorded_at)  # fmt: skip


def _case_reward(db: sqlite_utils.Database, case_id: int | None) -> float | None:
    if case_id is None:
        return None
    row = db.execute("SELECT reward FROM cases WHERE id = ?", (case_id,)).fetchone()
    return None if row is None or row[0] is None else float(row[0])
