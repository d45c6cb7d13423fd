"""A real `memento-mcp serve` child on 127.0.0.1, for every test that needs one over HTTP.

tests/clients/ starts its servers through the `http_server_factory` fixture (its conftest);
tests/test_replicas.py starts several on one PostgreSQL database.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

QUIET = {
    "FASTMCP_SHOW_SERVER_BANNER": "false",
    "FASTMCP_CHECK_FOR_UPDATES": "off",
    "FASTMCP_LOG_LEVEL": "ERROR",
}


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
