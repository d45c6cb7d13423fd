"""solve_task on the real server (build_server) with the real Memory: the stored case is completed
by record_outcome and retrieved into the next run's planner prompt."""

from __future__ import annotations

import json

import pytest
from fastmcp import Client
from fastmcp.exceptions import ToolError

from memento_mcp.agent.scripted import Script, ScriptedServer, call, say, say_json
from memento_mcp.server import build_server
from memento_mcp.settings import Settings

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

TASK = "What is (2 + 3) * 4?"


@pytest.fixture
def settings_for(tmp_path, monkeypatch, child_config):
    def make(base_url: str | None) -> Settings:
        servers = tmp_path / "servers.json"
        servers.write_text(json.dumps(child_config()))
        for name in (
            "MEMENTO_LLM_BASE_URL",
            "MEMENTO_LLM_API_KEY",
            "OPENAI_API_KEY",
            "MEMENTO_PLANNER_MODEL",
            "MEMENTO_EXECUTOR_MODEL",
        ):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("MEMENTO_HOME", str(tmp_path / "home"))
        monkeypatch.setenv("MEMENTO_MCP_SERVERS", str(servers))
        if base_url:
            monkeypatch.setenv("MEMENTO_LLM_BASE_URL", base_url)
            monkeypatch.setenv("MEMENTO_LLM_API_KEY", "test")
            monkeypatch.setenv("MEMENTO_PLANNER_MODEL", "planner")
            monkeypatch.setenv("MEMENTO_EXECUTOR_MODEL", "executor")
        return Settings()

    return make


async def test_solve_store_complete_and_reuse(settings_for):
    plan = {
        "plan": [{"id": 1, "description": "add 2 and 3"}, {"id": 2, "description": "multiply by 4"}]
    }
    script = Script(
        {
            "planner": [
                say_json(plan),
                say_json({"final_answer": "20"}),
                say_json({"final_answer": "20"}),
            ],
            "executor": [
                call("calc_add", a=2, b=3),
                say("5"),
                call("calc_multiply", a=5, b=4),
                say("20"),
            ],
        }
    )
    with ScriptedServer(script) as llm:
        server = build_server(settings_for(llm.base_url))
        async with Client(server) as client:
            first = (await client.call_tool("solve_task", {"task": TASK})).structured_content
            assert first["status"] == "answered" and first["answer"] == "20"
            assert [s["result"] for s in first["steps"]] == ["5.0", "20.0"]
            case = (
                await client.call_tool("get_case", {"case_id": first["case_id"]})
            ).structured_content
            assert case["reward"] is None and case["source"] == "solve_task" and case["trajectory"]
            await client.call_tool(
                "record_outcome", {"request_id": first["request_id"], "reward": 1.0}
            )
            case = (
                await client.call_tool("get_case", {"case_id": first["case_id"]})
            ).structured_content
            assert case["reward"] == 1.0
            second = (await client.call_tool("solve_task", {"task": TASK})).structured_content
    assert first["case_id"] in second["cases_used"]
    prompt = script.requests_for("planner")[-1]["messages"][1]["content"]
    assert f'<untrusted-case id="{first["case_id"]}" label="positive" reward="1">' in prompt
    assert "multiply by 4" in prompt


async def test_server_without_backend_says_how_to_configure_one(settings_for):
    server = build_server(settings_for(None))
    async with Client(server) as client:
        with pytest.raises(ToolError, match="MEMENTO_LLM_BASE_URL"):
            await client.call_tool("solve_task", {"task": TASK})
        stats = await client.call_tool("case_bank_stats", {})
        assert stats.structured_content["cases"] == 0
