"""Fixtures for the client-facing tests: real `memento-mcp serve` processes on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from http_server import HttpServer

from memento_mcp.casebank import CaseBank, NewCase
from memento_mcp.casebank import cases as case_writes
from memento_mcp.casebank import feedback as outcome_writes

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
"""Screenshots and logs kept for a human to look at (git-ignored)."""


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


def seed_bank(home: Path, cases: list[NewCase], days_ago: list[float] | None = None) -> list[int]:
    """Write cases straight into the bank under `home`, with random unit vectors.

    This is the server's own write path (CaseBank.record_outcome for rewarded cases, add_case
    for pending ones) minus the encoder, which takes tens of seconds to load on this box. With
    `days_ago`, each write is stamped that many days back, so charts have a history to draw.
    """
    rng = np.random.default_rng(0)
    bank = CaseBank(home / "memento.db")
    real_now = case_writes.now
    try:
        ids = []
        for i, case in enumerate(cases):
            if days_ago is not None:
                stamp = datetime.now(UTC) - timedelta(days=days_ago[i])
                case_writes.now = outcome_writes.now = lambda stamp=stamp: stamp.isoformat(timespec="milliseconds")
            vector = rng.normal(size=384).astype(np.float32)
            vector /= np.linalg.norm(vector)
            if case.reward is None:
                case_id, _ = bank.add_case(case, vector)
            else:
                recorded = bank.record_outcome(case.reward, None, (case, vector), None)
                assert recorded.case_id is not None
                case_id = recorded.case_id
            ids.append(case_id)
        return ids
    finally:
        case_writes.now = outcome_writes.now = real_now
        bank.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def seed() -> Callable[..., list[int]]:
    """seed_bank, for test modules (they do not import conftest)."""
    return seed_bank


@pytest.fixture(scope="module")
def http_server_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., HttpServer]]:
    """Start servers that live for the whole test module (each start costs seconds here)."""
    started: list[HttpServer] = []

    def start(
        *args: str,
        transport: str = "http",
        home: Path | None = None,
        log: Path | None = None,
        **env: str,
    ) -> HttpServer:
        home = home or tmp_path_factory.mktemp("home")
        server = HttpServer(home, *args, transport=transport, log=log, **env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
