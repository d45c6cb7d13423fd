"""The reward channel through the MCP tools: a duplicate report changes nothing and its receipt
tells the truth; every outcome says who reported it, when, and for which request. On each bank
(the SQLite file, then PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastmcp import Client
from fastmcp.exceptions import ToolError

from memento_mcp.memory import Memory, open_memory
from memento_mcp.server import build_server
from memento_mcp.settings import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings(any_settings: Settings) -> Settings:
    return any_settings


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with Client(build_server(settings)) as client:
        yield client

CASE = {"task": "Who wrote Dune?", "plan": "Search the book; read the author.", "answer": "Herbert"}


async def call(client: Client, tool: str, **args: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    assert result.structured_content is not None
    return result.structured_content


def outcome_rows(memory: Memory) -> list[tuple[Any, ...]]:
    return memory.bank._query("SELECT case_id, reward, client_id FROM outcomes ORDER BY id")


async def test_a_free_standing_case_reported_52_times_is_one_outcome(
    client: Client, settings: Settings
) -> None:
    first = await call(client, "record_outcome", **CASE, reward=1.0)
    receipts = [await call(client, "record_outcome", **CASE, reward=1.0) for _ in range(51)]
    assert {r["case_id"] for r in receipts} == {first["case_id"]}
    assert all(r["duplicate"] for r in receipts) and not first["duplicate"]
    assert all(r["reward"] == 1.0 and r["case_reward"] == 1.0 for r in receipts)
    stats = await call(client, "case_bank_stats")
    assert stats["cases"] == 1
    memory = open_memory(settings)
    try:
        assert outcome_rows(memory) == [(first["case_id"], 1.0, "local")]
    finally:
        memory.close()


async def test_a_contradicting_duplicate_is_refused_and_the_case_keeps_its_reward(
    client: Client,
) -> None:
    first = await call(client, "record_outcome", **CASE, reward=1.0)
    with pytest.raises(ToolError, match=r"already recorded .* reward 1\.0"):
        await call(client, "record_outcome", **CASE, reward=0.0)
    case = await call(client, "get_case", case_id=first["case_id"])
    assert case["reward"] == 1.0


async def test_a_repeated_request_outcome_is_idempotent_and_a_different_one_refused(
    client: Client,
) -> None:
    await call(client, "record_outcome", **CASE, reward=1.0)
    shown = await call(client, "retrieve_cases", query="Who wrote Dune?")
    first = await call(client, "record_outcome", request_id=shown["request_id"], reward=1.0)
    again = await call(client, "record_outcome", request_id=shown["request_id"], reward=1.0)
    assert again["duplicate"] is True and first["duplicate"] is False
    assert again["labelled_impressions"] == first["labelled_impressions"] == 1
    with pytest.raises(ToolError, match="already recorded"):
        await call(client, "record_outcome", request_id=shown["request_id"], reward=0.0)
    stats = await call(client, "case_bank_stats")
    assert stats["labelled_impressions"] == 1


async def test_each_outcome_carries_its_provenance(client: Client) -> None:
    receipt = await call(client, "record_outcome", **CASE, reward=1.0)
    assert receipt["client_id"] == "local" and receipt["recorded_at"]
    shown = await call(client, "retrieve_cases", query="Who wrote Dune?")
    labelled = await call(client, "record_outcome", request_id=shown["request_id"], reward=0.0)
    assert labelled["request_id"] == shown["request_id"] and labelled["client_id"] == "local"
