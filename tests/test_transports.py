"""The real server as a subprocess: over stdio, streamable HTTP and SSE, as clients run it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastmcp import Client
from fastmcp.client.transports import SSETransport, StdioTransport, StreamableHttpTransport

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

QUIET = {
    "FASTMCP_SHOW_SERVER_BANNER": "false",
    "FASTMCP_CHECK_FOR_UPDATES": "off",
    "FASTMCP_LOG_LEVEL": "ERROR",
}


def server_env(home: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, **QUIET, "MEMENTO_HOME": str(home), **extra}
    env.pop("MEMENTO_AUTH_TOKEN", None) if "MEMENTO_AUTH_TOKEN" not in extra else None
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
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


def start_http(home: Path, transport: str, **env: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "memento_mcp", "serve", "--transport", transport, "--port", str(port)],
        env=server_env(home, **env),
    )
    wait_for_port(port, process)
    return process, port


@pytest.fixture
def stop() -> Iterator[list[subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        process.terminate()
        process.wait(timeout=10)


async def store_then_retrieve(client: Client) -> None:
    receipt = await client.call_tool(
        "record_outcome",
        {"task": "Who wrote Dune?", "plan": "Search the book.", "answer": "Frank Herbert", "reward": 1},
    )
    case_id = receipt.structured_content["case_id"]
    found = await client.call_tool("retrieve_cases", {"query": "Author of the novel Dune"})
    assert found.structured_content["positive"][0]["case_id"] == case_id


async def test_stdio(tmp_path: Path) -> None:
    transport = StdioTransport(
        sys.executable, ["-m", "memento_mcp", "serve"], env=server_env(tmp_path)
    )
    async with Client(transport, timeout=120) as client:
        await store_then_retrieve(client)


async def test_streamable_http(tmp_path: Path, stop: list[subprocess.Popen[bytes]]) -> None:
    process, port = start_http(tmp_path, "http")
    stop.append(process)
    async with Client(f"http://127.0.0.1:{port}/mcp", timeout=120) as client:
        await store_then_retrieve(client)


async def test_sse(tmp_path: Path, stop: list[subprocess.Popen[bytes]]) -> None:
    process, port = start_http(tmp_path, "sse")
    stop.append(process)
    async with Client(SSETransport(f"http://127.0.0.1:{port}/sse"), timeout=120) as client:
        await store_then_retrieve(client)


async def test_bearer_token_is_required_when_set(
    tmp_path: Path, stop: list[subprocess.Popen[bytes]]
) -> None:
    process, port = start_http(tmp_path, "http", MEMENTO_AUTH_TOKEN="s3cret-token")
    stop.append(process)
    url = f"http://127.0.0.1:{port}/mcp"
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        response = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                              headers={"Accept": "application/json, text/event-stream", **headers})
        assert response.status_code == 401
    transport = StreamableHttpTransport(url, headers={"Authorization": "Bearer s3cret-token"})
    async with Client(transport, timeout=120) as client:
        await store_then_retrieve(client)


def test_binding_beyond_loopback_without_a_token_is_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "memento_mcp", "serve", "--transport", "http", "--host", "0.0.0.0"],
        env=server_env(tmp_path), capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert "refusing to serve on 0.0.0.0 without a token" in result.stderr
