"""Fixtures for the client-facing tests: real `memento-mcp serve` processes on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from memento_mcp.casebank import CaseBank, NewCase
from memento_mcp.casebank import cases as case_writes
from memento_mcp.casebank import feedback as outcome_writes

QUIET = {
    "FASTMCP_SHOW_SERVER_BANNER": "false",
    "FASTMCP_CHECK_FOR_UPDATES": "off",
    "FASTMCP_LOG_LEVEL": "ERROR",
}
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
"""Screenshots and logs kept for a human to look at (git-ignored)."""


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


def server_env(home: Path, **extra: str) -> dict[str, str]:
    """The caller's environment minus any MEMENTO_* that would leak into the server under test."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMENTO_")}
    return {**env, **QUIET, "MEMENTO_HOME": str(home), **extra}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"nothing listened on port {port}")


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


class HttpServer:
    """One `memento-mcp serve --transport http` child and where to reach it."""

    def __init__(
        self, home: Path, *args: str, transport: str = "http", log: Path | None = None, **env: str
    ) -> None:
        self.home = home
        self.port = free_port()
        # With `log`, everything the server prints (stdout and stderr) goes to that file.
        output = log.open("wb") if log is not None else None
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "memento_mcp",
                "serve",
                "--transport",
                transport,
                "--port",
                str(self.port),
                *args,
            ],
            env=server_env(home, **env),
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
        )
        if output is not None:
            output.close()  # the child holds its own copy
        wait_for_port(self.port, self.process)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()


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
