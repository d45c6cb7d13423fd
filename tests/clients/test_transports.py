"""The real server as a subprocess: over stdio, streamable HTTP and SSE, as clients run it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastmcp import Client
from fastmcp.client.transports import SSETransport, StdioTransport, StreamableHttpTransport

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def stdio_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMENTO_")}
    return {**env, "MEMENTO_HOME": str(home), "FASTMCP_SHOW_SERVER_BANNER": "false",
            "FASTMCP_CHECK_FOR_UPDATES": "off", "FASTMCP_LOG_LEVEL": "ERROR"}


async def store_then_retrieve(client: Client) -> None:
    receipt = await client.call_tool(
        "record_outcome",
        {"task": "Who wrote Dune?", "plan": "Search the book.", "answer": "Frank Herbert", "reward": 1},
    )
    case_id = receipt.structured_content["case_id"]
    found = await client.call_tool("retrieve_cases", {"query": "Author of the novel Dune"})
    assert found.structured_content["positive"][0]["case_id"] == case_id


async def test_stdio(tmp_path: Path) -> None:
    transport = StdioTransport(sys.executable, ["-m", "memento_mcp", "serve"], env=stdio_env(tmp_path))
    async with Client(transport, timeout=120) as client:
        await store_then_retrieve(client)


async def test_streamable_http(http_server_factory: Callable[..., Any]) -> None:
    server = http_server_factory()
    async with Client(f"{server.base}/mcp", timeout=120) as client:
        await store_then_retrieve(client)


async def test_sse(http_server_factory: Callable[..., Any]) -> None:
    server = http_server_factory(transport="sse")
    async with Client(SSETransport(f"{server.base}/sse"), timeout=120) as client:
        await store_then_retrieve(client)


async def test_bearer_token_is_required_when_set(http_server_factory: Callable[..., Any]) -> None:
    server = http_server_factory(MEMENTO_AUTH_TOKEN="s3cret-token")
    url = f"{server.base}/mcp"
    async with httpx.AsyncClient() as http:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            response = await http.post(
                url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                headers={"Accept": "application/json, text/event-stream", **headers},
            )
            assert response.status_code == 401
    transport = StreamableHttpTransport(url, headers={"Authorization": "Bearer s3cret-token"})
    async with Client(transport, timeout=120) as client:
        await store_then_retrieve(client)


def test_binding_beyond_loopback_without_a_token_is_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "memento_mcp", "serve", "--transport", "http", "--host", "0.0.0.0"],
        env=stdio_env(tmp_path), capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 1
    assert "refusing to serve on 0.0.0.0 without a token" in result.stderr
