"""ToolHub over real stdio children: namespacing, env isolation, errors, crash and restart."""

from __future__ import annotations

import importlib.util
import json
import os
import sys

import pytest

from memento_mcp.agent.loop import solve
from memento_mcp.agent.scripted import call, say, say_json
from memento_mcp.agent.toolhub import HubTool, ToolHub, load_config, public_name
from memento_mcp.errors import ConfigError

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_tools_are_namespaced_and_children_get_only_their_configured_env(
    child_config, monkeypatch
):
    monkeypatch.setenv("MEMENTO_TEST_SECRET", "must-not-leak")
    config = child_config(GIVEN="yes")
    config["mcpServers"]["broken"] = {
        "command": sys.executable,
        "args": ["-c", "import sys; sys.exit(2)"],
    }
    async with ToolHub(config, connect_timeout_s=30) as hub:
        assert {"calc_add", "calc_env", "calc_crash", "calc_stats"} <= set(hub.tools)
        assert hub.tools["calc_add"].upstream == "add"
        spec = next(t for t in hub.openai_tools() if t["function"]["name"] == "calc_add")
        assert set(spec["function"]["parameters"]["properties"]) == {"a", "b"}
        assert "broken" in hub.dead and "unavailable" in hub.catalog()
        assert (await hub.call("calc_env", {"name": "GIVEN"})).text == "yes"
        assert (await hub.call("calc_env", {"name": "MEMENTO_TEST_SECRET"})).text == "<unset>"
        stats = await hub.call("calc_stats", {"values": [1, 2, 3]})
        assert json.loads(stats.text) == {"sum": 6.0, "mean": 2.0} and not stats.is_error
        failed = await hub.call("calc_fail", {"message": "nope"})
        assert failed.is_error and failed.text == "nope"
        bad = await hub.call("calc_add", {"a": 1})
        assert bad.is_error and "b" in bad.text
        unknown = await hub.call("calc_nothing", {})
        assert unknown.is_error and "calc_add" in unknown.text


async def test_a_child_crashing_mid_task_is_reported_and_restarted(scripted, child_config):
    pair = scripted(
        planner=[
            say_json(
                {"plan": [{"id": 1, "description": "crash"}, {"id": 2, "description": "add"}]}
            ),
            say_json({"final_answer": "5"}),
        ],
        executor=[
            call("calc_pid"),
            call("calc_crash"),
            say("the server crashed"),
            call("calc_add", a=2, b=3),
            call("calc_pid"),
            say("2 + 3 = 5"),
        ],
    )
    async with ToolHub(child_config(), connect_timeout_s=30) as hub:
        result = await solve(
            "crash then add", planner=pair.planner, executor=pair.executor, tools=hub
        )
        assert hub.restarts["calc"] == 1
    assert result.status == "answered" and result.answer == "5"
    first_pid, crash, add, second_pid = result.steps
    assert crash.is_error and "crashed" in crash.result and "restarted" in crash.result
    assert not add.is_error and add.result == "5.0"
    assert first_pid.result != second_pid.result
    tool_message = [
        m for m in pair.script.requests_for("executor")[2]["messages"] if m["role"] == "tool"
    ][-1]
    assert tool_message["content"].startswith("Error: Tool server 'calc' crashed")


def _toolserver(module: str) -> dict:
    return {
        "command": sys.executable,
        "args": ["-m", module],
        "env": {"FASTMCP_LOG_LEVEL": "ERROR", "FASTMCP_SHOW_SERVER_BANNER": "false"},
    }


@pytest.mark.skipif(
    importlib.util.find_spec("toolservers.math") is None
    or importlib.util.find_spec("toolservers.code") is None,
    reason="toolservers code/math not built yet",
)
async def test_two_step_task_over_the_real_code_and_math_servers(scripted, memory):
    config = {
        "mcpServers": {
            "code": _toolserver("toolservers.code"),
            "math": _toolserver("toolservers.math"),
        }
    }
    pair = scripted(
        planner=[
            say_json(
                {
                    "plan": [
                        {"id": 1, "description": "compute 6 * 7 with python"},
                        {"id": 2, "description": "check it with the math server"},
                    ]
                }
            ),
            say_json({"final_answer": "42"}),
        ],
        executor=[
            call("code_run_python", code="print(6 * 7)"),
            say("python printed 42"),
            call("math_evaluate", expression="6*7"),
            say("6*7 = 42"),
        ],
    )
    async with ToolHub(config, connect_timeout_s=60) as hub:
        assert not hub.dead, hub.dead
        result = await solve(
            "6 * 7?", planner=pair.planner, executor=pair.executor, tools=hub, memory=memory
        )
    assert result.status == "answered"
    code_step, math_step = result.steps
    assert not code_step.is_error and json.loads(code_step.result)["stdout"] == "42\n"
    assert not math_step.is_error and "42" in math_step.result
    json.loads(math_step.result)  # structured results reach the model as JSON, not a repr
    assert memory.cases[result.case_id]["answer"] == "42"


def test_public_names_fit_openai_rules():
    assert public_name("math", "add") == "math_add"
    assert public_name("my.server", "do it") == "my_server_do_it"
    long = public_name("s" * 40, "t" * 40)
    assert len(long) == 64 and long != public_name("s" * 40, "t" * 41)


def test_bad_config_is_a_config_error(tmp_path):
    path = tmp_path / "servers.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="Cannot read"):
        load_config(path)
    path.write_text(json.dumps({"servers": {}}))
    with pytest.raises(ConfigError, match="mcpServers"):
        load_config(path)
    assert os.environ.get("MEMENTO_TEST_SECRET") is None


async def test_a_child_that_will_not_start_is_retried_at_most_every_cooldown(tmp_path):
    config = {
        "mcpServers": {"bad": {"command": sys.executable, "args": ["-c", "raise SystemExit(2)"]}}
    }
    async with ToolHub(config, connect_timeout_s=20, restart_cooldown_s=30) as hub:
        assert "bad" in hub.dead and hub.tools == {}
        hub.tools["bad_x"] = HubTool("bad_x", "bad", "x", "", {})  # as if it had listed a tool once
        first = await hub.call("bad_x", {})
        second = await hub.call("bad_x", {})
    assert first.is_error and second.is_error and "restarted at most every 30s" in second.text
    assert hub.restarts["bad"] == 1
