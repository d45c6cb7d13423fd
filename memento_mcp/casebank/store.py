"""CaseBank: every SQL statement of the project lives here, behind plain Python methods.

One SQLite file in WAL mode, so several server processes (Claude Desktop and Cursor at once)
share a bank. Each write is one `BEGIN IMMEDIATE` transaction: it waits for the write lock
instead of failing half-way, and a crash leaves either the whole write or none of it.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import sqlite_utils

from memento_mcp.casebank.schema import SCHEMA_VERSION, migrate
from memento_mcp.errors import Conflict, NotFound, StorageError
from memento_mcp.models import POSITIVE_REWARD, Case

CASE_STATS = ("case_reward", "case_success_rate", "case_log_labelled")
"""Columns of the per-case record fed to the Q-scorer next to the two embeddings."""

LEXICAL_BUDGET = 2000
"""At most about this many FTS5 matches are ranked by BM25 per query (the rarest words first)."""

_STOPWORDS = frozenset(
    ["a", "an", "and", "are", "as", "at", "be", "by", "did", "do", "does", "for", "from", "how", "in", "is", "it", "of", "on", "or", "that", "the", "this", "to", "was", "what", "when", "where", "which", "who", "whom", "whose", "why", "will", "with"]
)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def content_hash(task: str, plan: str, answer: str) -> str:
    return hashlib.sha256(json.dumps([task, plan, answer]).encode()).hexdigest()


@dataclass
class NewCase:
    """A case about to be written; the bank assigns its id."""

    namespace: str
    task: str
    plan: str
    answer: str = ""
    reward: float | None = None
    source: str = "agent"
    metadata: dict[str, Any] = field(default_factory=dict)
    trajectory: list[dict[str, Any]] | None = None
    request_id: str | None = None


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
class TrainingSet:
    """Labelled impressions as arrays, ready for the Q-scorer."""

    impression_ids: np.ndarray  # (N,) int64
    request_ids: list[str]  # (N,) group key: split by query on this
    query_vecs: np.ndarray  # (N, 384) float32
    case_vecs: np.ndarray  # (N, 384) float32
    case_stats: np.ndarray  # (N, 3) float32, columns CASE_STATS
    rewards: np.ndarray  # (N,) float32
    propensities: np.ndarray  # (N,) float32


def to_blob(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


def from_blob(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.float32)


class CaseBank:
    """The persistent store. Thread-safe: one connection, guarded by a lock."""

    def __init__(self, path: Path | str, encoder_name: str = "all-MiniLM-L6-v2") -> None:
        self.path = str(path)
        self.encoder_name = encoder_name
        self._lock = threading.RLock()
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            self.db = sqlite_utils.Database(conn)
            if self.path != ":memory:":
                self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")  # durable in WAL mode across crashes
            self.db.execute("PRAGMA busy_timeout=30000")
            migrate(self.db)
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(f"cannot open the case bank at {self.path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self.db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite_utils.Database]:
        """One atomic write: all of it commits, or none of it does."""
        with self._lock:
            try:
                self.db.execute("BEGIN IMMEDIATE")
                try:
                    yield self.db
                except BaseException:
                    self.db.rollback()
                    raise
                self.db.execute("COMMIT")
            except sqlite3.Error as exc:
                self.db.rollback()
                raise StorageError(f"could not write to the case bank: {exc}") from exc

    def _query(self, sql: str, params: Any = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self.db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StorageError(f"could not read the case bank: {exc}") from exc

    def data_version(self) -> int:
        """Changes whenever another connection commits (SQLite's PRAGMA data_version)."""
        return int(self._query("PRAGMA data_version")[0][0])

    # -- cases -------------------------------------------------------------------------------

    def add_cases(self, cases: list[tuple[NewCase, np.ndarray]]) -> list[tuple[int, bool]]:
        """Store cases with their embeddings in one transaction; returns (case_id, created).

        A case whose task, plan and answer already exist in its namespace is not stored again.
        """
        results: list[tuple[int, bool]] = []
        with self._write() as db:
            for case, vector in cases:
                results.append(self._insert_case(db, case, vector))
        return results

    def existing_cases(self, namespace: str, hashes: list[str]) -> dict[str, int]:
        """content_hash -> case_id for the hashes already stored in the namespace."""
        found: dict[str, int] = {}
        for start in range(0, len(hashes), 500):
            chunk = hashes[start : start + 500]
            rows = self._query(
                "SELECT content_hash, id FROM cases WHERE namespace = ?"
                f" AND content_hash IN ({','.join('?' * len(chunk))})",
                [namespace, *chunk],
            )
            found.update({row[0]: int(row[1]) for row in rows})
        return found

    def add_case(self, case: NewCase, vector: np.ndarray) -> tuple[int, bool]:
        return self.add_cases([(case, vector)])[0]

    def _insert_case(
        self, db: sqlite_utils.Database, case: NewCase, vector: np.ndarray
    ) -> tuple[int, bool]:
        digest = content_hash(case.task, case.plan, case.answer)
        existing = db.execute(
            "SELECT id FROM cases WHERE namespace = ? AND content_hash = ?",
            (case.namespace, digest),
        ).fetchone()
        if existing:
            return int(existing[0]), False
        stamp = now()
        cursor = db.execute(
            "INSERT INTO cases (namespace, task, plan, answer, reward, source, metadata,"
            " trajectory, content_hash, request_id, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                case.namespace,
                case.task,
                case.plan,
                case.answer,
                case.reward,
                case.source,
                json.dumps(case.metadata),
                None if case.trajectory is None else json.dumps(case.trajectory),
                digest,
                case.request_id,
                stamp,
                stamp,
            ),
        )
        case_id = int(cursor.lastrowid or 0)
        db.execute(
            "INSERT INTO embeddings (case_id, encoder, vector) VALUES (?, ?, ?)",
            (case_id, self.encoder_name, to_blob(vector)),
        )
        return case_id, True

    def get_case(self, case_id: int) -> Case:
        rows = self._query("SELECT * FROM cases WHERE id = ?", (case_id,))
        if not rows:
            raise NotFound(f"no case with case_id {case_id}; retrieve_cases lists existing ones")
        return _case_from_row(dict(zip(_CASE_COLUMNS, rows[0], strict=True)))

    def cases_by_id(self, case_ids: list[int]) -> dict[int, Case]:
        if not case_ids:
            return {}
        marks = ",".join("?" * len(case_ids))
        rows = self._query(f"SELECT * FROM cases WHERE id IN ({marks})", case_ids)
        cases = [_case_from_row(dict(zip(_CASE_COLUMNS, row, strict=True))) for row in rows]
        return {case.case_id: case for case in cases}

    def iter_cases(self, namespace: str | None = None, batch: int = 1000) -> Iterator[Case]:
        last = 0
        while True:
            where, params = "id > ?", [last]
            if namespace is not None:
                where, params = where + " AND namespace = ?", [last, namespace]
            rows = self._query(
                f"SELECT * FROM cases WHERE {where} ORDER BY id LIMIT {batch}", params
            )
            if not rows:
                return
            for row in rows:
                yield _case_from_row(dict(zip(_CASE_COLUMNS, row, strict=True)))
            last = rows[-1][0]

    def delete_case(self, case_id: int) -> None:
        """Remove a case with its embedding and every impression of it."""
        with self._write() as db:
            if not db.execute("SELECT 1 FROM cases WHERE id = ?", (case_id,)).fetchone():
                raise NotFound(f"no case with case_id {case_id}; nothing was deleted")
            db.execute("DELETE FROM impressions WHERE case_id = ?", (case_id,))
            db.execute("DELETE FROM embeddings WHERE case_id = ?", (case_id,))
            db.execute("DELETE FROM cases WHERE id = ?", (case_id,))

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
        rows = self._query(
            "SELECT cases.id, -bm25(cases_fts) FROM cases_fts"
            " JOIN cases ON cases.id = cases_fts.rowid"
            " WHERE cases_fts MATCH ? AND cases.namespace = ? AND cases.reward IS NOT NULL"
            " ORDER BY bm25(cases_fts) LIMIT ?",
            (" OR ".join(f'"{w}"' for w in rare), namespace, limit),
        )
        return [(int(case_id), float(score)) for case_id, score in rows]

    # -- vectors -----------------------------------------------------------------------------

    def vectors_after(self, after_case_id: int) -> tuple[np.ndarray, list[str], np.ndarray]:
        """Case ids, namespaces and embeddings of the cases with id > after_case_id."""
        rows = self._query(
            "SELECT cases.id, cases.namespace, embeddings.vector FROM cases"
            " JOIN embeddings ON embeddings.case_id = cases.id"
            " WHERE cases.id > ? ORDER BY cases.id",
            (after_case_id,),
        )
        ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        vectors = np.frombuffer(b"".join(row[2] for row in rows), dtype=np.float32)
        return ids, [row[1] for row in rows], vectors.reshape(len(rows), -1 if rows else 0)

    def case_count(self) -> tuple[int, int]:
        """(count, max id) of all cases: what the in-memory index should hold."""
        row = self._query("SELECT count(*), coalesce(max(id), 0) FROM cases")
        return int(row[0][0]), int(row[0][1])

    def case_vectors(self, case_ids: list[int]) -> np.ndarray:
        marks = ",".join("?" * len(case_ids))
        rows = dict(
            self._query(
                f"SELECT case_id, vector FROM embeddings WHERE case_id IN ({marks})", case_ids
            )
        )
        return np.stack([from_blob(rows[case_id]) for case_id in case_ids])

    # -- requests, impressions, outcomes -----------------------------------------------------

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
                "INSERT OR IGNORE INTO requests (id, namespace, query, query_vector, scorer,"
                " source, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (request_id, namespace, query, to_blob(query_vector), scorer, source, stamp),
            ).rowcount
            if not inserted:
                return False
            db.conn.executemany(
                "INSERT INTO impressions (request_id, case_id, rank, score, similarity,"
                " propensity, reward, labelled_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        request_id,
                        shown.case_id,
                        shown.rank,
                        shown.score,
                        shown.similarity,
                        shown.propensity,
                        shown.reward,
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
                sql = "UPDATE impressions SET reward = ?, labelled_at = ? WHERE request_id = ?"
                params: list[Any] = [reward, stamp, request_id]
                if used_case_ids is not None:
                    sql += f" AND case_id IN ({','.join('?' * len(used_case_ids))})"
                    params += used_case_ids
                labelled = db.execute(sql, params).rowcount
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

    # -- what the Q-scorer learns from ---------------------------------------------------------

    def case_stats(self, case_ids: list[int]) -> np.ndarray:
        """(N, 3) CASE_STATS for serving: the case's reward and how its showings ended."""
        if not case_ids:
            return np.zeros((0, len(CASE_STATS)), dtype=np.float32)
        marks = ",".join("?" * len(case_ids))
        rows = self._query(
            f"SELECT cases.id, coalesce(cases.reward, 0.5), count(impressions.reward),"
            f" coalesce(sum(impressions.reward), 0) FROM cases"
            f" LEFT JOIN impressions ON impressions.case_id = cases.id"
            f" WHERE cases.id IN ({marks}) GROUP BY cases.id",
            case_ids,
        )
        by_id = {int(row[0]): row[1:] for row in rows}
        stats = np.zeros((len(case_ids), len(CASE_STATS)), dtype=np.float32)
        for i, case_id in enumerate(case_ids):
            reward, count, total = by_id.get(case_id, (0.5, 0, 0.0))
            stats[i] = (reward, (total + 1) / (count + 2), np.log1p(count))
        return stats

    def training_set(self, namespace: str | None = None) -> TrainingSet:
        """Every labelled impression with its vectors and leave-own-request-out case stats."""
        sql = (
            "SELECT impressions.id, impressions.request_id, requests.query_vector,"
            " embeddings.vector, coalesce(cases.reward, 0.5), impressions.case_id,"
            " impressions.reward, impressions.propensity"
            " FROM impressions"
            " JOIN requests ON requests.id = impressions.request_id"
            " JOIN cases ON cases.id = impressions.case_id"
            " JOIN embeddings ON embeddings.case_id = impressions.case_id"
            " WHERE impressions.reward IS NOT NULL"
        )
        params: list[Any] = []
        if namespace is not None:
            sql += " AND requests.namespace = ?"
            params.append(namespace)
        rows = self._query(sql + " ORDER BY impressions.id", params)
        n = len(rows)
        rewards = np.array([row[6] for row in rows], dtype=np.float32)
        case_ids = np.array([row[5] for row in rows], dtype=np.int64)
        # Totals per case over all labelled rows, minus the row's own label, so it cannot leak.
        totals: dict[int, tuple[int, float]] = {}
        for case_id, reward in zip(case_ids.tolist(), rewards.tolist(), strict=True):
            count, total = totals.get(case_id, (0, 0.0))
            totals[case_id] = (count + 1, total + reward)
        stats = np.zeros((n, len(CASE_STATS)), dtype=np.float32)
        for i, row in enumerate(rows):
            count, total = totals[int(row[5])]
            count, total = count - 1, total - float(row[6])
            stats[i] = (row[4], (total + 1) / (count + 2), np.log1p(count))

        def matrix(column: int) -> np.ndarray:
            blob = b"".join(row[column] for row in rows)
            return np.frombuffer(blob, dtype=np.float32).reshape(n, -1).copy()

        return TrainingSet(
            impression_ids=np.array([row[0] for row in rows], dtype=np.int64),
            request_ids=[row[1] for row in rows],
            query_vecs=matrix(2) if n else np.zeros((0, 384), dtype=np.float32),
            case_vecs=matrix(3) if n else np.zeros((0, 384), dtype=np.float32),
            case_stats=stats,
            rewards=rewards,
            propensities=np.array([row[7] for row in rows], dtype=np.float32),
        )

    # -- retriever versions ------------------------------------------------------------------

    def add_retriever_version(self, version: str, path: str, metrics: dict[str, Any]) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO retriever_versions (version, path, metrics, created_at, active)"
                " VALUES (?, ?, ?, ?, 0)",
                (version, path, json.dumps(metrics), now()),
            )

    def activate_retriever(self, version: str) -> None:
        """Make `version` the one that serves; the swap is a single transaction."""
        with self._write() as db:
            if not db.execute(
                "SELECT 1 FROM retriever_versions WHERE version = ?", (version,)
            ).fetchone():
                raise NotFound(f"no retriever version {version!r}")
            db.execute("UPDATE retriever_versions SET active = 0 WHERE active = 1")
            db.execute(
                "UPDATE retriever_versions SET active = 1, promoted_at = ? WHERE version = ?",
                (now(), version),
            )

    def retriever_versions(self) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT version, path, metrics, created_at, promoted_at, active"
            " FROM retriever_versions ORDER BY created_at"
        )
        return [
            {
                "version": row[0],
                "path": row[1],
                "metrics": json.loads(row[2] or "{}"),
                "created_at": row[3],
                "promoted_at": row[4],
                "active": bool(row[5]),
            }
            for row in rows
        ]

    def active_retriever(self) -> dict[str, Any] | None:
        active = [v for v in self.retriever_versions() if v["active"]]
        return active[0] if active else None

    # -- overview ----------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        namespaces = self._query(
            "SELECT namespace, count(*), sum(reward >= 0.5), sum(reward < 0.5),"
            " sum(reward IS NULL) FROM cases GROUP BY namespace ORDER BY namespace"
        )
        return {
            "path": self.path,
            "schema_version": SCHEMA_VERSION,
            "cases": sum(row[1] for row in namespaces),
            "requests": self._query("SELECT count(*) FROM requests")[0][0],
            "impressions": self._query("SELECT count(*) FROM impressions")[0][0],
            "labelled_impressions": self.labelled_count(),
            "namespaces": [
                {
                    "namespace": row[0],
                    "cases": row[1],
                    "positive": row[2] or 0,
                    "negative": row[3] or 0,
                    "pending": row[4] or 0,
                }
                for row in namespaces
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

    def outcomes_by_day(self, namespace: str | None = None) -> list[dict[str, Any]]:
        """Outcomes recorded per UTC day, oldest first: how many, how many positive, mean reward."""
        rows = self._query(
            "SELECT substr(outcomes.recorded_at, 1, 10) AS day, count(*),"
            " sum(outcomes.reward >= ?), avg(outcomes.reward)"
            + _OUTCOMES_IN
            + " GROUP BY day ORDER BY day",
            (POSITIVE_REWARD, namespace, namespace),
        )
        keys = ("day", "outcomes", "positive", "mean_reward")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def reward_curve(
        self, namespace: str | None = None, points: int = 40, per_point: int = 5
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
            (points, per_point, namespace, namespace),
        )
        return [{"outcomes": int(row[0]), "mean_reward": float(row[1])} for row in rows]


_OUTCOMES_IN = (
    " FROM outcomes LEFT JOIN cases ON cases.id = outcomes.case_id"
    " LEFT JOIN requests ON requests.id = outcomes.request_id"
    " WHERE (? IS NULL OR coalesce(cases.namespace, requests.namespace) = ?)"
)
"""Outcomes, in one namespace or (parameter None) all: a free-standing outcome has its case's
namespace, a label-only one its request's."""

_CASE_COLUMNS = (
    "id",
    "namespace",
    "task",
    "plan",
    "answer",
    "reward",
    "source",
    "metadata",
    "trajectory",
    "content_hash",
    "request_id",
    "created_at",
    "updated_at",
)


def _case_from_row(row: dict[str, Any]) -> Case:
    return Case(
        case_id=row["id"],
        namespace=row["namespace"],
        task=row["task"],
        plan=row["plan"],
        answer=row["answer"],
        reward=row["reward"],
        source=row["source"],
        metadata=json.loads(row["metadata"] or "{}"),
        created_at=row["created_at"],
        trajectory=None if row["trajectory"] is None else json.loads(row["trajectory"]),
    )
