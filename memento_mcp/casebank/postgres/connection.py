"""A pool of PostgreSQL connections behind the same two doors as the SQLite bank: `_write` and `_query`.

The SQL that both banks share is written once, SQLite style (`?` placeholders), in the mixins
of casebank/; `_query` and the transaction that `_write` yields translate it to psycopg's
`%s`. What differs between the dialects lives in this package, written for Postgres directly
(`_run`, `Tx.run`).

- Every write is one transaction on one pooled connection: all of it commits, or none.
- Reads run in autocommit, so a retrieval on any replica sees every write committed before it.
- Each connection carries a statement timeout, so a stuck query fails instead of piling up.
- Errors are translated here, once: an unreachable server, a missing pgvector extension and a
  schema newer than the code each give one line that says what to do. The URL's password never
  appears in a message or a log line (`path` is the URL without it).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import platformdirs
import psycopg
import psycopg.conninfo
from psycopg_pool import ConnectionPool, PoolTimeout

from memento_mcp.casebank.connection import Connection
from memento_mcp.casebank.postgres.adapters import register_vector
from memento_mcp.casebank.postgres.schema import is_read_only, migrate, require_current
from memento_mcp.errors import Conflict, ReadOnlyBank, StorageError

Row = tuple[Any, ...]
POOL_SIZE = 10
STATEMENT_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 10.0


def redact(url: str) -> str:
    """The URL as it may be shown: user, host, port and database, never the password."""
    try:
        parts = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://(unparsable URL)"
    user = f"{parts['user']}@" if parts.get("user") else ""
    host, database = str(parts.get("host") or "localhost"), parts.get("dbname") or ""
    if host.startswith("/"):  # a Unix socket directory
        return f"postgresql://{user}/{database}?host={host}"
    where = f"{host}:{parts['port']}" if parts.get("port") else host
    return f"postgresql://{user}{where}/{database}"


@functools.lru_cache(maxsize=512)
def to_psycopg(sql: str) -> str:
    """Shared SQL (`?` placeholders) in psycopg's dialect (`%s`, and `%` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


class Tx:
    """One write transaction: `execute` takes shared SQL, `run` Postgres SQL."""

    def __init__(self, conn: psycopg.Connection[Row]) -> None:
        self._conn = conn

    @property
    def conn(self) -> Tx:  # the shared code calls `db.conn.executemany`, as on sqlite-utils
        return self

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Row]:
        return self._conn.execute(to_psycopg(sql), params, binary=True)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._conn.cursor() as cursor:
            cursor.executemany(to_psycopg(sql), rows)

    def run(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> psycopg.Cursor[Row]:
        return self._conn.execute(sql, params, binary=True)

    def run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._conn.cursor() as cursor:
            cursor.executemany(sql, rows)


class PgConnection(Connection):
    """The pool, its error translation, and the bank's location (password-free)."""

    vector_dims_sql = "vector_dims(vector)"
    json_items_sql = "SELECT json_array_elements_text(CAST(? AS json))"
    outcomes_commit_in_id_order = False  # concurrent writers draw ids before they commit

    def __init__(
        self,
        url: str,
        encoder_name: str = "all-MiniLM-L6-v2",
        *,
        cache_dir: Path | str | None = None,
        pool_size: int = POOL_SIZE,
        statement_timeout_s: float = STATEMENT_TIMEOUT_S,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
    ) -> None:
        self.url = url  # holds the password: never log or show it; `path` is for that
        self.path = redact(url)
        self.encoder_name = encoder_name
        self.statement_timeout_s = statement_timeout_s
        self.cache_dir = Path(
            cache_dir or platformdirs.user_cache_dir("memento-mcp", appauthor=False)
        )
        self._lock = threading.RLock()  # only the shared code's per-process sections use it
        options = {
            "application_name": "memento-mcp",
            "connect_timeout": max(1, int(connect_timeout_s)),
            "options": f"-c statement_timeout={int(statement_timeout_s * 1000)}",
        }
        try:
            with psycopg.connect(url, autocommit=True, **options) as conn:  # type: ignore[arg-type]
                self.read_only = is_read_only(conn)
                if self.read_only:
                    require_current(conn, self.path)
                else:
                    migrate(conn)
        except psycopg.OperationalError as exc:
            raise StorageError(
                f"cannot reach PostgreSQL at {self.path}: {_first_line(exc)}"
            ) from exc
        except psycopg.Error as exc:
            raise StorageError(
                f"cannot open the case bank at {self.path}: {_first_line(exc)}"
            ) from exc
        self.pool: ConnectionPool[psycopg.Connection[Row]] = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True, **options},
            configure=register_vector,
            open=False,
            name="memento",
            timeout=connect_timeout_s,
        )
        try:
            self.pool.open(wait=True, timeout=connect_timeout_s)
        except PoolTimeout as exc:
            self.pool.close()
            raise StorageError(f"cannot reach PostgreSQL at {self.path}: {exc}") from exc

    def close(self) -> None:
        self.pool.close()

    def read_only_message(self) -> str:
        return (
            f"the case bank at {self.path} is read-only to the server: its role may read but not"
            " write the tables, so retrieval works but outcomes and new cases cannot be recorded;"
            " GRANT INSERT, UPDATE, DELETE on the bank's tables (and USAGE on their sequences)"
            " to the role and restart the server to record them"
        )

    def data_version(self) -> int:
        """Unused: nothing in-process mirrors a Postgres bank (vector search runs in the database)."""
        return 0

    def generation(self) -> None:
        """No cheap sign of other replicas' commits: the learner reads on every retrieval."""
        return None

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """psycopg's errors as the bank's: the one place they are translated."""
        try:
            yield
        except psycopg.errors.InsufficientPrivilege as exc:
            if doing != "write":  # a role that may not even read: no read-only bank
                raise StorageError(f"could not {doing} the case bank: {_first_line(exc)}") from exc
            raise ReadOnlyBank(self.read_only_message()) from exc
        except psycopg.errors.UniqueViolation as exc:
            if exc.diag.constraint_name == "outcomes_request_id":
                raise Conflict(
                    "the outcome of this request was already recorded (by a concurrent call);"
                    " nothing was changed"
                ) from exc
            raise StorageError(f"could not {doing} the case bank: {_first_line(exc)}") from exc
        except psycopg.errors.QueryCanceled as exc:
            raise StorageError(
                f"a database statement ran past the statement timeout"
                f" ({self.statement_timeout_s:g} s) while trying to {doing} the case bank"
            ) from exc
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise StorageError(
                f"cannot reach PostgreSQL at {self.path}: {_first_line(exc)}"
            ) from exc
        except psycopg.Error as exc:
            raise StorageError(f"could not {doing} the case bank: {_first_line(exc)}") from exc

    @contextmanager
    def _write(self) -> Iterator[Tx]:  # type: ignore[override]
        """One atomic write: all of it commits, or none of it does."""
        self.require_writable()
        with self._errors("write"), self.pool.connection() as conn, conn.transaction():
            yield Tx(conn)

    def _query(self, sql: str, params: Any = ()) -> list[Row]:  # type: ignore[override]
        return self._run(to_psycopg(sql), params)

    def _run(self, sql: str, params: Any = ()) -> list[Row]:
        """A read in Postgres's own SQL."""
        with self._errors("read"), self.pool.connection() as conn:
            return conn.execute(sql, params, binary=True).fetchall()

    @contextmanager
    def exclusive(self, name: str) -> Iterator[bool]:
        """Whether this process holds the database-wide lock `name` (an advisory lock) inside.

        Yields False at once when another process holds it. The lock lives as long as the
        session that took it, so a replica that dies releases it with its connection.
        """
        with self._errors("lock"), self.pool.connection() as conn:
            row = conn.execute(
                "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (name,)
            ).fetchone()
            mine = bool(row and row[0])
            try:
                yield mine
            finally:
                if mine:
                    conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (name,))


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
