"""One SQLite connection shared by the case bank's parts: atomic writes and checked reads.

One file in WAL mode, so several server processes (Claude Desktop and Cursor at once) share a
bank. Each write is one `BEGIN IMMEDIATE` transaction: it waits for the write lock instead of
failing half-way, and a crash leaves either the whole write or none of it.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import sqlite_utils

from memento_mcp.casebank import files
from memento_mcp.casebank.schema import migrate, require_current
from memento_mcp.errors import ReadOnlyBank


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def to_blob(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


def from_blob(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.float32)


def _enable_wal(db: sqlite_utils.Database, patience: float = 30.0) -> None:
    """Switch the file to WAL, waiting out other processes opening it at the same moment.

    The switch takes an exclusive lock and SQLite answers "database is locked" at once instead
    of calling the busy handler, so two servers starting together on a new bank would fail.
    """
    deadline = time.monotonic() + patience
    pause = 0.01
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.25)


class Connection:
    """The connection and its lock; every part of CaseBank reads and writes through these."""

    # What the dialects spell differently, for the SQL the two banks share (the Postgres bank
    # overrides them): a stored vector's dimensions, and the items of a JSON list parameter.
    vector_dims_sql = "length(vector) / 4"  # float32 blobs
    json_items_sql = "SELECT value FROM json_each(?)"
    outcomes_commit_in_id_order = True  # writers take turns (BEGIN IMMEDIATE)

    @property
    def _in_namespaces(self) -> str:
        """A namespace filter with one parameter, a JSON list of namespaces."""
        return f" AND namespace IN ({self.json_items_sql})"

    def __init__(
        self,
        path: Path | str,
        encoder_name: str = "all-MiniLM-L6-v2",
        *,
        read_only: bool | None = None,
    ) -> None:
        """Open (or create) the bank. `read_only` None: read-only exactly when the file exists
        and this user may not write it; such a bank serves retrieval but records nothing."""
        self.path = str(path)
        self.encoder_name = encoder_name
        self.read_only = files.is_read_only(self.path) if read_only is None else read_only
        self._lock = threading.RLock()
        self._commits = 0  # this connection's, but retrieval logs (generation())
        self._data_version = 0  # as last read
        try:
            if self.read_only:
                conn = files.connect_read_only(self.path)
            else:
                if self.path != ":memory:":
                    Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            self.db = sqlite_utils.Database(conn)
            if self.path != ":memory:" and not self.read_only:
                _enable_wal(self.db)
            self.db.execute("PRAGMA synchronous=NORMAL")  # durable in WAL mode across crashes
            self.db.execute("PRAGMA busy_timeout=30000")
            if self.read_only:
                require_current(self.db, self.path)
            else:
                migrate(self.db)
        except (sqlite3.Error, OSError) as exc:
            raise files.open_error(self.path, exc) from exc

    def read_only_message(self) -> str:
        """What a refused write says: why this bank is read-only and how to make it writable."""
        return files.read_only_message(self.path)

    def require_writable(self) -> None:
        """Fail before any work when the bank cannot record (a read-only file)."""
        if self.read_only:
            raise ReadOnlyBank(self.read_only_message())

    def close(self) -> None:
        with self._lock:
            self.db.close()

    @contextmanager
    def _write(self, *, retrieval_log: bool = False) -> Iterator[sqlite_utils.Database]:
        """One atomic write: all of it commits, or none of it does. A `retrieval_log` (what
        was shown for a request, nothing labelled yet) leaves generation() where it was."""
        self.require_writable()
        with self._lock:
            try:
                self.db.execute("BEGIN IMMEDIATE")
                try:
                    yield self.db
                except BaseException:
                    self.db.rollback()
                    raise
                self.db.execute("COMMIT")
                self._commits += not retrieval_log
            except sqlite3.Error as exc:
                self.db.rollback()
                raise files.access_error(self.path, exc, "write to") from exc

    def _query(self, sql: str, params: Any = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self.db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise files.access_error(self.path, exc, "read") from exc

    def ping(self) -> None:
        """One trivial read: raises StorageError when the bank cannot be reached (health checks)."""
        self._query("SELECT 1")

    def data_version(self) -> int:
        """Changes whenever another connection commits (SQLite's PRAGMA data_version)."""
        self._data_version = int(self._query("PRAGMA data_version")[0][0])
        return self._data_version

    def generation(self) -> tuple[int, int]:
        """Changes whenever anything the learner reads may have changed: a commit by another
        connection, or one of ours other than a retrieval's log. While it stays the same the
        learner skips its reads of new outcomes and of the active model.

        Other connections' commits count as of the last data_version() read, which the vector
        index makes on every retrieval before ranking (retrieval.index): one read fewer on the
        connection every thread of the server waits for (bench/load.py)."""
        return self._data_version, self._commits
