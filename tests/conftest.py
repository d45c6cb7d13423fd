"""Shared fixtures: a fresh case bank in a temporary home, and an in-memory MCP client on it."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from fastmcp import Client

from memento_mcp.memory import Memory, open_memory
from memento_mcp.server import build_server
from memento_mcp.settings import Settings
from postgres_server import PostgresForTests

os.environ.setdefault("FASTMCP_CHECK_FOR_UPDATES", "off")
os.environ.setdefault("FASTMCP_SHOW_SERVER_BANNER", "false")

ANCHORS = Path(__file__).resolve().parents[2] / "shared" / "anchors" / "memento-data"
"""The original project's public data, laid beside the repository (see README, Development)."""


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", namespace="default")


@pytest.fixture
def memory(settings: Settings) -> Iterator[Memory]:
    memory = open_memory(settings)
    yield memory
    memory.close()


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with Client(build_server(settings)) as client:
        yield client


@pytest.fixture
def anchors() -> Path:
    if not ANCHORS.is_dir():
        pytest.skip(f"Memento's public data is not at {ANCHORS}")
    return ANCHORS


# -- PostgreSQL (issue 11): the case-bank tests run on both banks ---------------------------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresForTests]:
    # Not under pytest's tmp_path: the server runs as another user (pgserver's, when root), and
    # any pytest session on the machine resets /tmp/pytest-of-<user> to mode 0700 under it.
    data_dir = Path(tempfile.mkdtemp(prefix="memento-pg-"))
    server = PostgresForTests(data_dir)
    yield server
    server.close()
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresForTests) -> Iterator[str]:
    """A fresh, migrated database of its own for one test."""
    url = postgres_server.new_database()
    yield url
    postgres_server.drop(url)


@pytest.fixture(params=["sqlite", "postgres"])
def bank_location(request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    """Where a test's bank lives: a SQLite file, then (second run) a Postgres database."""
    if request.param == "sqlite":
        return tmp_path / "bank.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def any_settings(bank_location: str | Path, tmp_path: Path) -> Settings:
    """Settings on each bank in turn (see bank_location)."""
    url = bank_location if isinstance(bank_location, str) else None
    return Settings(home=tmp_path / "home", namespace="default", database_url=url)


@pytest.fixture
def any_memory(any_settings: Settings) -> Iterator[Memory]:
    """A Memory on each bank in turn (see bank_location)."""
    memory = open_memory(any_settings)
    yield memory
    memory.close()
