"""HTTP transport security, against a real `memento-mcp serve --transport http`.

Each attack is a request that would succeed with the right headers (the control request proves
it), and each must be refused with the right status and leave the case bank as it was.
"""

from __future__ import annotations

import itertools
from typing import Any

HttpServer = Any  # tests/clients/conftest.py: a running `memento-mcp serve` child

import httpx
import pytest
from fastmcp import Client
from fastmcp.client.transports import SSETransport, StreamableHttpTransport

from memento_mcp.casebank import NewCase

pytestmark = pytest.mark.slow

TOKEN = "test-token-4b1d"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PROTOCOL = "2026-07-28"
_ids = itertools.count(1)


def tool_call(
    server: HttpServer, name: str, arguments: dict[str, Any], **headers: str
) -> httpx.Response:
    """One sessionless (2026-07-28) tools/call POST, the way a script or a browser would send it."""
    body = {
        "jsonrpc": "2.0",
        "id": next(_ids),
        "method": "tools/call",
        "params": {
            "name": name,
            "arguments": arguments,
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": PROTOCOL,
                "io.modelcontextprotocol/clientCapabilities": {},
            },
        },
    }
    base = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": PROTOCOL,
        "Mcp-Method": "tools/call",
        "Mcp-Name": name,
    }
    return httpx.post(f"{server.base}/mcp", json=body, headers={**base, **headers}, timeout=120)


RECORD = {"task": "Plant a rogue case", "plan": "Exploit the bank", "answer": "x", "reward": 1}
DELETE = {"case_id": 1}
ATTACKS = [("record_outcome", RECORD), ("delete_case", DELETE)]


@pytest.fixture(scope="module")
def server(
    http_server_factory: Any, seed: Any, tmp_path_factory: pytest.TempPathFactory
) -> HttpServer:
    home = tmp_path_factory.mktemp("secured")
    cases = [NewCase("default", f"Seeded task {i}", f"Plan {i}", "answer", 1.0) for i in range(3)]
    seed(home, cases)
    return http_server_factory("--allow-host", "bank.example", home=home, MEMENTO_AUTH_TOKEN=TOKEN)


def bank_cases(server: HttpServer) -> int:
    response = tool_call(server, "case_bank_stats", {}, **AUTH)
    assert response.status_code == 200, response.text
    return int(_result(response)["structuredContent"]["cases"])


def _result(response: httpx.Response) -> dict[str, Any]:
    """The JSON-RPC result, from a JSON body or the first SSE data line."""
    if response.headers["content-type"].startswith("text/event-stream"):
        data = next(line[5:] for line in response.text.splitlines() if line.startswith("data:"))
        return httpx.Response(200, content=data).json()["result"]  # type: ignore[no-any-return]
    return response.json()["result"]  # type: ignore[no-any-return]


def test_control_request_with_token_and_loopback_host_changes_the_bank(server: HttpServer) -> None:
    # The same request the attacks send, with the right headers, does change the bank.
    before = bank_cases(server)
    response = tool_call(server, "delete_case", {"case_id": 3}, **AUTH)
    assert response.status_code == 200
    assert _result(response)["isError"] is False
    assert bank_cases(server) == before - 1


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-token"}, {"Authorization": TOKEN}],
    ids=["no-token", "wrong-token", "no-bearer-scheme"],
)
@pytest.mark.parametrize(("tool", "arguments"), ATTACKS, ids=["record", "delete"])
def test_missing_or_wrong_token_gets_401_and_changes_nothing(
    server: HttpServer, headers: dict[str, str], tool: str, arguments: dict[str, Any]
) -> None:
    before = bank_cases(server)
    response = tool_call(server, tool, arguments, **headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].lower().startswith("bearer")
    assert bank_cases(server) == before


@pytest.mark.parametrize("host", ["evil.example", f"attacker.test:{8000}", "bank.example.evil"])
@pytest.mark.parametrize(("tool", "arguments"), ATTACKS, ids=["record", "delete"])
def test_foreign_host_header_gets_421_and_changes_nothing(
    server: HttpServer, host: str, tool: str, arguments: dict[str, Any]
) -> None:
    before = bank_cases(server)
    response = tool_call(server, tool, arguments, Host=host, **AUTH)
    assert response.status_code == 421
    assert bank_cases(server) == before


def test_allow_listed_host_is_served(server: HttpServer) -> None:
    response = tool_call(server, "case_bank_stats", {}, Host=f"bank.example:{server.port}", **AUTH)
    assert response.status_code == 200
    assert _result(response)["isError"] is False


@pytest.mark.parametrize("origin", ["http://evil.example", "https://127.0.0.1.evil.example"])
@pytest.mark.parametrize(("tool", "arguments"), ATTACKS, ids=["record", "delete"])
def test_foreign_browser_origin_gets_403_and_changes_nothing(
    server: HttpServer, origin: str, tool: str, arguments: dict[str, Any]
) -> None:
    before = bank_cases(server)
    response = tool_call(server, tool, arguments, Origin=origin, **AUTH)
    assert response.status_code == 403
    assert bank_cases(server) == before


def test_loopback_origin_is_served(server: HttpServer) -> None:
    response = tool_call(server, "case_bank_stats", {}, Origin=server.base, **AUTH)
    assert response.status_code == 200


def test_dashboard_is_behind_the_same_guard_and_token(server: HttpServer) -> None:
    page = f"{server.base}/dashboard"
    assert httpx.get(page, headers={**AUTH, "Host": "evil.example"}, timeout=30).status_code == 421
    assert httpx.get(page, timeout=30).status_code == 401
    opened = httpx.get(page, headers=AUTH, timeout=30)
    assert opened.status_code == 200 and "Seeded task 0" in opened.text


def test_guard_runs_before_auth_so_rebinding_learns_nothing(server: HttpServer) -> None:
    # No token and a foreign Host: refused as misdirected, not answered with a 401 challenge.
    assert tool_call(server, "case_bank_stats", {}, Host="evil.example").status_code == 421


@pytest.mark.anyio
async def test_fastmcp_client_with_the_token_works(server: HttpServer) -> None:
    transport = StreamableHttpTransport(f"{server.base}/mcp", headers=AUTH)
    async with Client(transport, timeout=120) as client:
        stats = await client.call_tool("case_bank_stats", {})
    assert stats.structured_content["cases"] >= 1


@pytest.fixture(scope="module")
def sse(http_server_factory: Any) -> HttpServer:
    return http_server_factory(transport="sse", MEMENTO_AUTH_TOKEN=TOKEN)


def test_sse_transport_needs_the_token_and_a_loopback_host(sse: HttpServer) -> None:
    url = f"{sse.base}/sse"
    assert httpx.get(url, timeout=30).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer nope"}, timeout=30).status_code == 401
    assert httpx.get(url, headers={**AUTH, "Host": "evil.example"}, timeout=30).status_code == 421


@pytest.mark.anyio
async def test_sse_client_with_the_token_works(sse: HttpServer) -> None:
    async with Client(SSETransport(f"{sse.base}/sse", headers=AUTH), timeout=120) as client:
        assert (await client.call_tool("case_bank_stats", {})).structured_content["cases"] == 0
