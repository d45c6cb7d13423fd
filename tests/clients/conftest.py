"""Fixtures for the client-facing tests: real `memento-mcp serve` processes on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

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


class HttpServer:
    """One `memento-mcp serve --transport http` child and where to reach it."""

    def __init__(self, home: Path, *args: str, **env: str) -> None:
        self.home = home
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "memento_mcp", "serve", "--transport", "http",
             "--port", str(self.port), *args],
            env=server_env(home, **env),
        )
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

    def start(*args: str, **env: str) -> HttpServer:
        server = HttpServer(tmp_path_factory.mktemp("home"), *args, **env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
