"""A real PostgreSQL with pgvector for the tests: the `pgserver` package's, or the user's own.

`pgserver` bundles PostgreSQL 16 with pgvector 0.6 and starts it from a directory (as root too);
MEMENTO_TEST_DATABASE_URL names a server of your own instead (its role must be allowed to
CREATE DATABASE). Each test gets a database of its own, copied from a template that already
holds the schema, so tests never see each other's rows. No database is mocked.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ENV = "MEMENTO_TEST_DATABASE_URL"


def with_database(url: str, name: str) -> str:
    """The same server and credentials, another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def with_user(url: str, user: str) -> str:
    """The same server and database, another role (no password)."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


class PostgresForTests:
    """The server the session's tests use, and the databases made on it."""

    def __init__(self, data_dir: Path) -> None:
        self._pgserver = None
        url = os.environ.get(ENV)
        if not url:
            import pgserver  # the PyPI package; a test dependency

            self._pgserver = pgserver.get_server(data_dir, cleanup_mode="stop")
            url = self._pgserver.get_uri()
        self.admin_url = url
        self.template = f"memento_template_{uuid.uuid4().hex[:8]}"
        self._execute(f'CREATE DATABASE "{self.template}"')
        from memento_mcp.casebank.postgres import PostgresBank

        PostgresBank(with_database(url, self.template)).close()  # migrated once, copied after

    def _execute(self, sql: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql.encode())

    def new_database(self, migrated: bool = True) -> str:
        name = f"memento_test_{uuid.uuid4().hex[:10]}"
        template = f' TEMPLATE "{self.template}"' if migrated else ""
        self._execute(f'CREATE DATABASE "{name}"{template}')
        return with_database(self.admin_url, name)

    def drop(self, url: str) -> None:
        name = urlsplit(url).path.lstrip("/")
        self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        self.drop(with_database(self.admin_url, self.template))
        if self._pgserver is not None:
            self._pgserver.cleanup()
