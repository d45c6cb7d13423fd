"""Every case-bank tool through an in-memory MCP client, as an agent would call it, on each bank
(the SQLite file, then PostgreSQL: the `any_settings` fixture)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastmcp import Client
from fastmcp.exceptions import ToolError

from memento_mcp.server import build_server
from memento_mcp.settings import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client(any_settings: Settings) -> AsyncIterator[Client]:
    async with Client(build_server(any_settings)) as client:
        yield client

CASES = [
    ("What sport does Deportivo Cali play?", "Look up the club; read its sport.", "football", 1.0),
    ("What sport does Alexis Mendoza play?", "Search the player's biography.", "football", 1.0),
    ("What is the capital of Orotina Canton?", "Guess from the name.", "Orotina", 0.0),
    ("Who wrote the novel Dune?", "Search the book; read the author.", "Frank Herbert", 1.0),
]


async def call(client: Client, tool: str, **args: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    assert result.structured_content is not None
    return result.structured_content


async def seed(client: Client, namespace: str | None = None) -> list[int]:
    ids = []
    for task, plan, answer, reward in CASES:
        receipt = await call(
            client, "record_outcome", task=task, plan=plan, answer=answer, reward=reward,
            namespace=namespace,
        )
        ids.append(receipt["case_id"])
    return ids


async def test_lists_the_case_bank_tools_with_annotations(client: Client) -> None:
    tools = {tool.name: tool for tool in await client.list_tools()}
    assert set(tools) == {
        "retrieve_cases", "record_outcome", "get_case", "delete_case", "case_bank_stats",
        "solve_task",
    }
    assert tools["retrieve_cases"].annotations.read_only_hint is True
    assert tools["delete_case"].annotations.destructive_hint is True
    assert tools["retrieve_cases"].output_schema is not None


async def test_retrieve_ranks_similar_cases_and_splits_positive_from_negative(client: Client) -> None:
    await seed(client)
    result = await call(client, "retrieve_cases", query="Which sport does Deportivo Cali play?", k=3)
    ranked = sorted(result["positive"] + result["negative"], key=lambda hit: hit["rank"])
    assert ranked[0]["task"] == "What sport does Deportivo Cali play?"
    assert ranked[0]["similarity"] > ranked[-1]["similarity"]
    assert all(hit["reward"] >= 0.5 for hit in result["positive"])
    assert all(hit["reward"] < 0.5 for hit in result["negative"])
    assert all(0 <= hit["score"] <= 1 for hit in ranked)
    assert result["scorer"] == "evidence" and len(ranked) == 3 and result["request_id"]


async def test_outcome_with_request_id_labels_the_shown_cases_and_stores_a_case(
    client: Client,
) -> None:
    await seed(client)
    shown = await call(client, "retrieve_cases", query="What sport does Carlos Valderrama play?")
    receipt = await call(
        client, "record_outcome", request_id=shown["request_id"], success=True,
        plan={"plan": [{"id": 1, "description": "Search his biography."}]}, answer="football",
    )
    assert receipt["labelled_impressions"] == 4 and receipt["reward"] == 1.0
    case = await call(client, "get_case", case_id=receipt["case_id"])
    assert case["task"] == "What sport does Carlos Valderrama play?"  # the request's query
    assert '"description": "Search his biography."' in case["plan"]
    stats = await call(client, "case_bank_stats")
    assert stats["labelled_impressions"] == 4 and stats["cases"] == 5


async def test_used_case_ids_narrow_the_credit(client: Client) -> None:
    await seed(client)
    shown = await call(client, "retrieve_cases", query="Who wrote Dune?", k=3)
    first = min(shown["positive"] + shown["negative"], key=lambda hit: hit["rank"])
    receipt = await call(
        client, "record_outcome", request_id=shown["request_id"], reward=0.8,
        used_case_ids=[first["case_id"]],
    )
    assert receipt["labelled_impressions"] == 1
    assert receipt["case_id"] is None  # no plan or answer: nothing new to store


async def test_a_second_outcome_for_one_request_is_refused(client: Client) -> None:
    await seed(client)
    shown = await call(client, "retrieve_cases", query="Who wrote Dune?")
    await call(client, "record_outcome", request_id=shown["request_id"], reward=1.0)
    with pytest.raises(ToolError, match="already recorded"):
        await call(client, "record_outcome", request_id=shown["request_id"], reward=0.0)


async def test_namespaces_keep_banks_apart(client: Client) -> None:
    await seed(client, namespace="team-a")
    result = await call(client, "retrieve_cases", query="Who wrote Dune?", namespace="team-b")
    assert result["positive"] == [] and result["negative"] == []
    result = await call(client, "retrieve_cases", query="Who wrote Dune?", namespace="team-a")
    assert result["positive"][0]["task"] == "Who wrote the novel Dune?"


async def test_delete_removes_the_case_from_retrieval_and_reads(client: Client) -> None:
    ids = await seed(client)
    await call(client, "retrieve_cases", query="Who wrote Dune?")
    assert (await call(client, "delete_case", case_id=ids[3]))["deleted"] is True
    result = await call(client, "retrieve_cases", query="Who wrote Dune?")
    assert ids[3] not in [hit["case_id"] for hit in result["positive"] + result["negative"]]
    with pytest.raises(ToolError, match="no case with case_id"):
        await call(client, "get_case", case_id=ids[3])
    with pytest.raises(ToolError, match="nothing was deleted"):
        await call(client, "delete_case", case_id=ids[3])


async def test_case_resource_reads_a_case_as_json(client: Client) -> None:
    ids = await seed(client)
    contents = await client.read_resource(f"memento://cases/{ids[0]}")
    assert '"task": "What sport does Deportivo Cali play?"' in contents[0].text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"task": "t", "plan": "p", "reward": 1.5}, "within \\[0, 1\\]"),
        ({"task": "t", "plan": "p"}, "reward .* or success"),
        ({"task": "  ", "plan": "p", "reward": 1}, "task must be non-empty"),
        ({"task": "t" * 70000, "plan": "p", "reward": 1}, "limit is 65536 bytes"),
        ({"request_id": "no-such-request", "reward": 1}, "unknown request_id"),
        ({"task": "t", "plan": "p", "reward": 1, "used_case_ids": [1]}, "needs the request_id"),
    ],
)
async def test_bad_outcomes_get_a_clear_error_and_change_nothing(
    client: Client, args: dict[str, Any], message: str
) -> None:
    before = await call(client, "case_bank_stats")
    result = await client.call_tool("record_outcome", args, raise_on_error=False)
    assert result.is_error
    text = result.content[0].text
    assert __import__("re").search(message, text), text
    assert "Traceback" not in text and "File \"" not in text
    assert await call(client, "case_bank_stats") == before


async def test_bad_retrievals_get_clear_errors(client: Client) -> None:
    with pytest.raises(ToolError, match="query must be non-empty"):
        await call(client, "retrieve_cases", query=" ")
    with pytest.raises(ToolError):
        await call(client, "retrieve_cases", query="x", k=0)


async def test_a_distinctive_word_finds_its_case_through_the_lexical_index(client: Client) -> None:
    await seed(client)
    rare = await call(client, "record_outcome", task="Configure the Quibblefrotz relay",
                      plan="Read the Quibblefrotz manual; set the relay mode.", reward=1.0)
    result = await call(client, "retrieve_cases", query="quibblefrotz", k=1)
    assert result["positive"][0]["case_id"] == rare["case_id"]
