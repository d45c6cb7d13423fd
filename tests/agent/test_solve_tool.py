"""solve_task as an MCP tool through fastmcp.Client: progress, cancellation, no backend, sampling.

Until memento_mcp/server.py carries solve_task, `app()` builds a FastMCP server whose lifespan and
tool body are exactly the lines server.py uses.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Annotated

import anyio
import mcp.types as mt
import pytest
from fastmcp import Client, Context, FastMCP
from fastmcp.exceptions import ToolError
from pydantic import Field

from memento_mcp.agent.llm import Backends
from memento_mcp.agent.runtime import AgentRuntime
from memento_mcp.agent.scripted import Script, call, sampling_handler, say, say_json, slow
from memento_mcp.agent.steps import SolveResult
from memento_mcp.errors import MementoError, to_tool_error
from memento_mcp.settings import Settings

pytestmark = pytest.mark.anyio


def no_backend() -> Settings:
    """Settings with no LLM endpoint, whatever the environment says."""
    return Settings(llm_base_url=None, llm_api_key=None, planner_model=None, executor_model=None)


def app(runtime_factory) -> FastMCP:
    @asynccontextmanager
    async def lifespan(server: FastMCP):
        async with runtime_factory() as agent:
            yield {"agent": agent}

    mcp = FastMCP("test-memento", lifespan=lifespan, mask_error_details=True)

    @mcp.tool
    async def solve_task(
        task: Annotated[str, Field(min_length=1, description="The task to solve")],
        ctx: Context,
        namespace: str | None = None,
        max_cycles: Annotated[int, Field(ge=1, le=10)] = 3,
        expected_answer: str | None = None,
    ) -> SolveResult:
        agent: AgentRuntime = ctx.lifespan_context["agent"]
        try:
            return await agent.solve_tool(
                ctx,
                task,
                namespace=namespace,
                max_cycles=max_cycles,
                expected_answer=expected_answer,
            )
        except MementoError as exc:
            raise to_tool_error(exc) from exc

    @mcp.tool
    def ping() -> str:
        return "pong"

    return mcp


@pytest.fixture
def runtime_with(calc_tools, memory):
    """runtime_with(pair | None) -> factory of AgentRuntime using in-process tools."""

    def make(pair=None, settings=None):
        settings = settings or no_backend()
        backends = Backends(pair.planner, pair.executor) if pair is not None else None

        def factory():
            runtime = AgentRuntime(
                settings,
                memory,
                tools_config={"mcpServers": {}},
                backends=backends,
                warm_start=False,
            )
            runtime._hub = calc_tools  # in-process tools stand in for the child pool here
            return runtime

        return factory

    return make


async def test_solve_task_over_mcp_sends_progress_and_returns_the_result(
    scripted, runtime_with, memory
):
    pair = scripted(
        planner=[
            say_json({"plan": [{"id": 1, "description": "add"}]}),
            say_json({"final_answer": "5"}),
        ],
        executor=[call("calc_add", a=2, b=3), say("5")],
    )
    events: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress, total, message):
        events.append((progress, total, message))

    async with Client(app(runtime_with(pair)), progress_handler=on_progress) as client:
        result = await client.call_tool("solve_task", {"task": "2 + 3?"})
    data = result.structured_content
    assert data["answer"] == "5" and data["status"] == "answered"
    assert data["steps"][0]["tool"] == "calc_add" and data["request_id"] == "req-1"
    assert memory.cases[data["case_id"]]["answer"] == "5"
    messages = [m for _, _, m in events]
    assert "planning cycle 1" in messages and "cycle 1 subtask 1: calc_add" in messages
    assert [p for p, _, _ in events] == sorted(p for p, _, _ in events)


async def test_no_backend_is_a_clear_tool_error_and_other_tools_work(runtime_with):
    async with Client(app(runtime_with(None))) as client:
        with pytest.raises(ToolError, match="No LLM backend is configured.*MEMENTO_LLM_BASE_URL"):
            await client.call_tool("solve_task", {"task": "anything"})
        assert (await client.call_tool("ping", {})).data == "pong"


async def test_client_cancellation_stops_the_run(scripted, runtime_with, memory):
    pair = scripted(
        planner=[say_json({"plan": [{"id": 1, "description": "slow"}]})],
        executor=[slow(5.0, say("late"))],
    )
    async with Client(app(runtime_with(pair))) as client:
        started = anyio.current_time()
        with pytest.raises(Exception, match="timed out"):
            await client.call_tool("solve_task", {"task": "t"}, timeout=0.5)
        assert anyio.current_time() - started < 2.0
        await anyio.sleep(0.3)
        assert (await client.call_tool("ping", {})).data == "pong"  # the session stays usable
    assert len(pair.script.requests) == 2 and memory.cases == {}


def sampling_script() -> Script:
    return Script(
        {
            "sampler": [
                say_json({"plan": [{"id": 1, "description": "add 2 and 3"}]}),
                call("calc_add", a=2, b=3),
                say("2 + 3 = 5"),
                say_json({"final_answer": "5"}),
            ]
        }
    )


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_the_callers_model_serves_through_sampling(runtime_with, memory, mode):
    script = sampling_script()
    capabilities = mt.SamplingCapability(tools=mt.SamplingToolsCapability())
    async with Client(
        app(runtime_with(None)),
        mode=mode,
        sampling_handler=sampling_handler(script),
        sampling_capabilities=capabilities,
    ) as client:
        result = await client.call_tool("solve_task", {"task": "2 + 3?"})
        # auto negotiates 2026-07-28 (InputRequiredResult rounds); legacy uses create_message
        assert (client.protocol_version == "2025-11-25") == (mode == "legacy")
    data = result.structured_content
    assert data["status"] == "answered" and data["answer"] == "5", data["error"]
    assert data["steps"][0]["result"] == "5"
    assert len(script.requests) == 4
    # the executor's second request carries the tool result back to the model
    assert any(m["role"] == "tool" and m["content"] == "5" for m in script.requests[2]["messages"])
    assert "tools" in script.requests[1]


async def test_sampling_without_tool_use_is_refused_with_help(runtime_with):
    script = sampling_script()
    async with Client(app(runtime_with(None)), sampling_handler=sampling_handler(script)) as client:
        with pytest.raises(ToolError, match="without tool use"):
            await client.call_tool("solve_task", {"task": "2 + 3?"})
    assert script.requests == []
