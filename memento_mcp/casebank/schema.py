"""The case bank's tables, created and upgraded in order; `PRAGMA user_version` records the step reached.

A new schema change is a new function appended to MIGRATIONS, never an edit of an old one, so
that every existing bank upgrades along the same path.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils

from memento_mcp.errors import StorageError


def _v1_initial(db: sqlite_utils.Database) -> None:
    # AUTOINCREMENT: a deleted case's id is never handed to a new case, so ids that agents
    # kept (in notes, in used_case_ids) can never silently point at a different case.
    db.execute(
        """CREATE TABLE cases (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            namespace TEXT NOT NULL,
            task TEXT NOT NULL,
            plan TEXT NOT NULL,
            answer TEXT NOT NULL,
            reward REAL,  -- NULL while the outcome is pending
            source TEXT NOT NULL,
            metadata TEXT,  -- JSON object
            trajectory TEXT,  -- JSON list, for cases written by solve_task
            content_hash TEXT NOT NULL,  -- dedupes re-imports within a namespace
            request_id TEXT,  -- the retrieval this case answered, when there was one
            created_at TEXT NOT NULL,
            updated_at TEXT
        )"""
    )
    db["cases"].create_index(["namespace", "content_hash"], unique=True)
    db["cases"].create_index(["request_id"])
    db["cases"].enable_fts(["task", "plan"], create_triggers=True, tokenize="porter")  # -> cases_fts

    db["embeddings"].create(
        {"case_id": int, "encoder": str, "vector": bytes},
        pk="case_id",
        foreign_keys=[("case_id", "cases", "id")],
    )
    db["requests"].create(
        {
            "id": str,
            "namespace": str,
            "query": str,
            "query_vector": bytes,
            "scorer": str,
            "source": str,  # retrieve_cases, solve_task, import
            "created_at": str,
        },
        pk="id",
    )
    db["impressions"].create(
        {
            "id": int,
            "request_id": str,
            "case_id": int,
            "rank": int,
            "score": float,
            "similarity": float,
            "propensity": float,
            "reward": float,  # NULL until the request's outcome arrives
            "labelled_at": str,
        },
        pk="id",
        foreign_keys=[("request_id", "requests", "id")],
    )
    db["impressions"].create_index(["request_id"])
    db["impressions"].create_index(["case_id"])
    db["outcomes"].create(
        {
            "id": int,
            "request_id": str,
            "case_id": int,
            "reward": float,
            "used_case_ids": str,  # JSON list or NULL
            "recorded_at": str,
        },
        pk="id",
    )
    db["outcomes"].create_index(["request_id"], unique=True)
    db["retriever_versions"].create(
        {
            "version": str,
            "path": str,
            "metrics": str,
            "created_at": str,
            "promoted_at": str,
            "active": int,
        },
        pk="version",
    )


def _v2_learning(db: sqlite_utils.Database) -> None:
    """What online learning needs (issue 9): plan embeddings, the share of an outcome each
    impression carries, and one retriever per namespace."""
    db.execute("ALTER TABLE impressions ADD COLUMN credit REAL")  # NULL until labelled
    db.execute("UPDATE impressions SET credit = 1.0 WHERE reward IS NOT NULL")
    db.execute("ALTER TABLE retriever_versions ADD COLUMN namespace TEXT")  # NULL: all of them
    db["plan_embeddings"].create(
        {"case_id": int, "encoder": str, "vector": bytes},
        pk="case_id",
        foreign_keys=[("case_id", "cases", "id")],
    )


def _v3_case_deletions(db: sqlite_utils.Database) -> None:
    # A log of deleted cases, filled by a trigger so that it sees every process's deletes: the
    # vector index (retrieval/index.py) applies them without rereading the bank (issue 10).
    db.execute(
        "CREATE TABLE IF NOT EXISTS case_deletions (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
        " case_id INTEGER NOT NULL, namespace TEXT NOT NULL)"
    )
    db.execute(
        "CREATE TRIGGER IF NOT EXISTS case_deletions_log AFTER DELETE ON cases BEGIN"
        " INSERT INTO case_deletions (case_id, namespace) VALUES (old.id, old.namespace); END"
    )


def _v4_history_index(db: sqlite_utils.Database) -> None:
    # Ranking reads each candidate's newest labelled showings (casebank/learning.py,
    # case_history) on every retrieval; with the columns it needs in the index, SQLite never
    # visits the table rows (50 candidates: 3.0 -> 1.3 ms with ~12 showings a case).
    db.execute(
        "CREATE INDEX IF NOT EXISTS impressions_history"
        " ON impressions (case_id, id, reward, credit, request_id)"
    )


def _v5_provenance(db: sqlite_utils.Database) -> None:
    # Who wrote each case, made each request and reported each outcome (issue 12): the token's
    # name, "local" for stdio and the CLI, NULL for rows written before this version. Outcomes
    # are then idempotent per (request, case, client), and one client's outcomes and cases can
    # be revoked (casebank/provenance.py).
    db.execute("ALTER TABLE cases ADD COLUMN client_id TEXT")
    db.execute("ALTER TABLE requests ADD COLUMN client_id TEXT")
    db.execute("ALTER TABLE outcomes ADD COLUMN client_id TEXT")
    db.execute("CREATE INDEX IF NOT EXISTS outcomes_case_client ON outcomes (case_id, client_id)")
    db.execute("CREATE INDEX IF NOT EXISTS outcomes_client ON outcomes (client_id, recorded_at)")
    db.execute("CREATE INDEX IF NOT EXISTS cases_client ON cases (client_id, created_at)")


def _v6_revocations(db: sqlite_utils.Database) -> None:
    # Each revocation (memento_mcp.revocation): whose outcomes, from when, done when. A server
    # already running sees a new row and rebuilds what it learnt in process (retriever.online).
    db.execute(
        "CREATE TABLE IF NOT EXISTS revocations (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
        " client_id TEXT NOT NULL, since TEXT NOT NULL, revoked_at TEXT NOT NULL)"
    )


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [
    _v1_initial,
    _v2_learning,
    _v3_case_deletions,
    _v4_history_index,
    _v5_provenance,
    _v6_revocations,
]
SCHEMA_VERSION = len(MIGRATIONS)


def require_current(db: sqlite_utils.Database, path: str) -> None:
    """A bank opened read-only cannot be migrated: it must already have this version's schema."""
    current = db.execute("PRAGMA user_version").fetchone()[0]
    if current != SCHEMA_VERSION:
        raise StorageError(
            f"the read-only case bank at {path} has schema version {current} and this"
            f" memento-mcp reads version {SCHEMA_VERSION}; open it once with write access (or"
            " with the matching memento-cbr-mcp) to bring it up to date"
        )


def migrate(db: sqlite_utils.Database) -> None:
    """Bring the bank up to SCHEMA_VERSION, each step in its own transaction."""
    current = db.execute("PRAGMA user_version").fetchone()[0]
    if current > SCHEMA_VERSION:
        raise StorageError(
            f"this bank has schema version {current}, newer than this memento-mcp understands "
            f"({SCHEMA_VERSION}); upgrade memento-cbr-mcp"
        )
    for version in range(current + 1, SCHEMA_VERSION + 1):
        with db.conn:
            db.execute("BEGIN IMMEDIATE")
            # Another process may have migrated while we waited for the write lock.
            if db.execute("PRAGMA user_version").fetchone()[0] >= version:
                continue
            MIGRATIONS[version - 1](db)
            db.execute(f"PRAGMA user_version = {version}")
