"""Tenants over real HTTP: a real `memento-mcp serve`, real MCP clients, one token per tenant.

alice may use team-a, bob team-b, reader may read team-a only, and MEMENTO_AUTH_TOKEN (the
single token of earlier versions) may use everything. Whatever alice tries, she can neither see,
change nor label bob's cases, and every refusal of a case reads exactly like a missing id.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

from memento_mcp.auth.tokens import TokenFile
from memento_mcp.casebank import NewCase

pytestmark = [pytest.mark.slow, pytest.mark.anyio]

HttpServer = Any  # tests/clients/conftest.py
LEGACY = "legacy-shared-token-9f3"
CASES = [
    NewCase("team-a", "Who wrote Dune?", "Search the book", "Frank Herbert", 1.0),
    NewCase("team-a", "Integrate x squared", "Use sympy", "x**3/3", 0.0),
    NewCase("team-b", "Who wrote Dune, the novel?", "Ask the librarian", "Herbert", 1.0),
    NewCase("team-b", "Capital of Australia", "Look it up", "Canberra", 1.0),
]


class Tenants:
    def __init__(self, server: HttpServer, secrets: dict[str, str], ids: list[int], log: Path):
        self.server, self.secrets, self.log = server, secrets, log
        self.a_ids, self.b_ids = ids[:2], ids[2:]

    def client(self, who: str) -> Client:
        secret = LEGACY if who == "legacy" else self.secrets[who]
        headers = {"Authorization": f"Bearer {secret}"}
        return Client(StreamableHttpTransport(f"{self.server.base}/mcp", headers=headers), timeout=120)


@pytest.fixture(scope="module")
def tenants(
    http_server_factory: Any, seed: Any, tmp_path_factory: pytest.TempPathFactory
) -> Tenants:
    home = tmp_path_factory.mktemp("tenants")
    ids = seed(home, CASES)
    tokens = TokenFile(home / "tokens.json")
    secrets = {
        "alice": tokens.add("alice", ["team-a"])[1],
        "bob": tokens.add("bob", ["team-b"])[1],
        "reader": tokens.add("reader", ["team-a"], read_only=True)[1],
        "slow": tokens.add("slow", ["team-a"], labels_per_minute=1)[1],
    }
    log = home / "server.log"
    server = http_server_factory(
        home=home, log=log, MEMENTO_AUTH_TOKEN=LEGACY, FASTMCP_LOG_LEVEL="INFO",
        MEMENTO_ABSTAIN_BELOW="0",  # seeded cases have random vectors: show them anyway
    )
    return Tenants(server, secrets, ids, log)


async def error_of(client: Client, tool: str, **args: Any) -> str:
    result = await client.call_tool(tool, args, raise_on_error=False)
    assert result.is_error, result
    return str(result.content[0].text)


async def data(client: Client, tool: str, **args: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    assert result.structured_content is not None
    return result.structured_content


def same_error(text: str, case_id: int, missing: str, missing_id: int) -> bool:
    return re.sub(rf"\b{case_id}\b", "ID", text) == re.sub(rf"\b{missing_id}\b", "ID", missing)


async def test_another_tenants_case_reads_exactly_like_a_missing_one(tenants: Tenants) -> None:
    bobs, missing_id = tenants.b_ids[0], 10_000
    async with tenants.client("alice") as alice:
        for tool in ("get_case", "delete_case"):
            missing = await error_of(alice, tool, case_id=missing_id)
            refused = await error_of(alice, tool, case_id=bobs)
            assert "no case with case_id" in missing
            assert same_error(refused, bobs, missing, missing_id), (refused, missing)
        with pytest.raises(Exception) as theirs:
            await alice.read_resource(f"memento://cases/{bobs}")
        with pytest.raises(Exception) as nobodys:
            await alice.read_resource(f"memento://cases/{missing_id}")
        assert same_error(str(theirs.value), bobs, str(nobodys.value), missing_id)
        assert (await data(alice, "get_case", case_id=tenants.a_ids[0]))["task"] == "Who wrote Dune?"
    async with tenants.client("bob") as bob:  # still there, untouched
        assert (await data(bob, "get_case", case_id=bobs))["namespace"] == "team-b"


async def test_retrieval_and_stats_stay_in_the_tokens_namespaces(tenants: Tenants) -> None:
    async with tenants.client("alice") as alice:
        found = await data(alice, "retrieve_cases", query="Who wrote Dune?", k=4)
        assert found["namespace"] == "team-a"  # the server default is not hers: her own
        shown = {hit["case_id"] for hit in found["positive"] + found["negative"]}
        assert shown and shown <= set(tenants.a_ids)
        refused = await error_of(alice, "retrieve_cases", query="Dune", namespace="team-b")
        assert refused.startswith("Forbidden") and "team-a" in refused
        stats = await data(alice, "case_bank_stats")
        assert [ns["namespace"] for ns in stats["namespaces"]] == ["team-a"]
        assert stats["cases"] == 2
    async with tenants.client("legacy") as legacy:  # MEMENTO_AUTH_TOKEN: every namespace
        stats = await data(legacy, "case_bank_stats")
        assert {ns["namespace"] for ns in stats["namespaces"]} >= {"team-a", "team-b"}


async def test_an_outcome_cannot_label_or_store_in_another_namespace(tenants: Tenants) -> None:
    async with tenants.client("bob") as bob:
        request = (await data(bob, "retrieve_cases", query="Capital of Australia"))["request_id"]
        before = await data(bob, "case_bank_stats")
    async with tenants.client("alice") as alice:
        theirs = await error_of(alice, "record_outcome", request_id=request, reward=0.0)
        nobodys = await error_of(alice, "record_outcome", request_id="f" * 32, reward=0.0)
        assert theirs.replace(request, "R") == nobodys.replace("f" * 32, "R")
        planted = await error_of(alice, "record_outcome", task="Plant", plan="p", reward=1.0,
                                 namespace="team-b")  # fmt: skip
        assert planted.startswith("Forbidden")
        solve = await error_of(alice, "solve_task", task="Anything", namespace="team-b")
        assert solve.startswith("Forbidden")
    async with tenants.client("bob") as bob:
        assert await data(bob, "case_bank_stats") == before
        receipt = await data(bob, "record_outcome", request_id=request, reward=1.0)
        assert receipt["client_id"] == "bob" and not receipt["duplicate"]


async def test_a_read_only_token_reads_but_changes_nothing(tenants: Tenants) -> None:
    async with tenants.client("reader") as reader:
        found = await data(reader, "retrieve_cases", query="Integrate x squared")
        assert found["namespace"] == "team-a"
        for tool, args in [
            ("record_outcome", {"request_id": found["request_id"], "reward": 1.0}),
            ("record_outcome", {"task": "t", "plan": "p", "reward": 1.0}),
            ("delete_case", {"case_id": tenants.a_ids[1]}),
        ]:
            assert "read-only" in await error_of(reader, tool, **args)
        assert (await data(reader, "get_case", case_id=tenants.a_ids[1]))["reward"] == 0.0


async def test_labels_past_the_tokens_rate_get_a_429_style_error(tenants: Tenants) -> None:
    async with tenants.client("slow") as slow:  # 1 label a minute
        first = await data(slow, "record_outcome", task="Rate 1", plan="p", reward=1.0)
        assert first["client_id"] == "slow"
        refused = await error_of(slow, "record_outcome", task="Rate 2", plan="p", reward=1.0)
        assert refused.startswith("RateLimited") and "retry in" in refused
        assert "1 labels per minute" in refused
        stats = await data(slow, "case_bank_stats")
        assert "Rate 2" not in str(await data(slow, "retrieve_cases", query="Rate 2", k=5))
        assert stats["cases"] == 3


def test_dashboard_shows_each_token_only_its_namespaces(tenants: Tenants) -> None:
    base = tenants.server.base
    alice = {"Authorization": f"Bearer {tenants.secrets['alice']}"}
    page = httpx.get(f"{base}/", headers=alice, timeout=30)
    assert page.status_code == 200
    assert "Who wrote Dune?" in page.text and "Capital of Australia" not in page.text
    page = httpx.get(f"{base}/?namespace=team-b", headers=alice, timeout=30)
    assert "Capital of Australia" not in page.text
    theirs = httpx.get(f"{base}/dashboard/cases/{tenants.b_ids[1]}", headers=alice, timeout=30)
    nobodys = httpx.get(f"{base}/dashboard/cases/10000", headers=alice, timeout=30)
    assert theirs.status_code == nobodys.status_code == 404
    assert re.sub(rf"\b{tenants.b_ids[1]}\b", "ID", theirs.text) == nobodys.text.replace("10000", "ID")
    mine = httpx.get(f"{base}/dashboard/cases/{tenants.a_ids[0]}", headers=alice, timeout=30)
    assert mine.status_code == 200 and "Who taught this case" in mine.text


def test_no_token_appears_in_any_log_line(tenants: Tenants) -> None:
    base = tenants.server.base
    with httpx.Client(base_url=base, timeout=30, follow_redirects=True) as browser:  # documented login
        login = browser.get(f"/?token={tenants.secrets['bob']}")
        assert login.status_code == 200 and "Capital of Australia" in login.text
        assert browser.get("/?token=mmt_not-a-real-token-but-shaped-like-one").status_code == 200
    httpx.get(f"{base}/?token={LEGACY}", timeout=30)
    httpx.get(f"{base}/", headers={"Authorization": f"Bearer {tenants.secrets['alice']}"}, timeout=30)
    httpx.post(f"{base}/mcp", headers={"Authorization": f"Bearer {tenants.secrets['reader']}"},
               json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, timeout=30)  # fmt: skip
    output = tenants.log.read_text(errors="replace")
    assert re.search(r'"GET /\?token=\[redacted\] HTTP/1\.1" 303', output), output[-2000:]
    for secret in [*tenants.secrets.values(), LEGACY]:
        assert secret not in output
