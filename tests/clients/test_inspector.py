"""The MCP Inspector CLI, an independent client (TypeScript SDK), against `memento-mcp serve`.

Pinned to @modelcontextprotocol/inspector@0.15.0: later versions need Node 22. The Inspector
exits 0 even when a tool fails, so every call here checks `isError` in its JSON output.
Skipped, with the reason, when npx is missing or the package cannot be fetched (warm the npx
cache in CI: see docs/clients.md).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from memento_mcp import clientconfig

pytestmark = pytest.mark.slow

INSPECTOR = ["npx", "-y", "@modelcontextprotocol/inspector@0.15.0", "--cli"]
TOOLS = {"retrieve_cases", "record_outcome", "get_case", "delete_case", "case_bank_stats"}
RECORD = [
    "--tool-arg",
    "task=Who wrote Dune?",
    "--tool-arg",
    "plan=Search the book's cover.",
    "--tool-arg",
    "answer=Frank Herbert",
    "--tool-arg",
    "reward=1",
]


def quiet_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMENTO_")}
    return {
        **env,
        "MEMENTO_HOME": str(home),
        "FASTMCP_SHOW_SERVER_BANNER": "false",
        "FASTMCP_CHECK_FOR_UPDATES": "off",
        "FASTMCP_LOG_LEVEL": "ERROR",
        "npm_config_prefer_offline": "true",
        "npm_config_update_notifier": "false",
    }


@pytest.fixture(scope="module")
def inspector(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    if shutil.which("npx") is None:
        pytest.skip("npx is not installed (Node.js 20 with npm)")
    env = quiet_env(tmp_path_factory.mktemp("probe"))
    try:
        probe = subprocess.run(
            [*INSPECTOR, "--help"],
            capture_output=True,
            text=True,
            timeout=240,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.skip("fetching @modelcontextprotocol/inspector@0.15.0 timed out")
    if probe.returncode != 0:
        pytest.skip(f"cannot run @modelcontextprotocol/inspector@0.15.0: {probe.stderr[-300:]}")
    return INSPECTOR


def call(inspector: list[str], target: list[str], *method: str, home: Path) -> dict[str, Any]:
    """Run one Inspector CLI command and return its JSON result (it exits 0 on tool errors)."""
    done = subprocess.run(
        [*inspector, *target, *method],
        capture_output=True,
        text=True,
        timeout=180,
        env=quiet_env(home),
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def record_then_retrieve(inspector: list[str], target: list[str], home: Path) -> None:
    listed = call(inspector, target, "--method", "tools/list", home=home)
    assert TOOLS <= {tool["name"] for tool in listed["tools"]}

    recorded = call(
        inspector,
        target,
        "--method",
        "tools/call",
        "--tool-name",
        "record_outcome",
        *RECORD,
        home=home,
    )
    assert recorded["isError"] is False, recorded
    case_id = recorded["structuredContent"]["case_id"]

    found = call(
        inspector,
        target,
        "--method",
        "tools/call",
        "--tool-name",
        "retrieve_cases",
        "--tool-arg",
        "query=Author of the novel Dune",
        home=home,
    )
    assert found["isError"] is False, found
    assert found["structuredContent"]["positive"][0]["case_id"] == case_id
    assert found["structuredContent"]["positive"][0]["answer"] == "Frank Herbert"


def test_stdio_with_the_command_users_paste(inspector: list[str], tmp_path: Path) -> None:
    entry = clientconfig.render("generic")["mcpServers"]["memento"]
    record_then_retrieve(inspector, [entry["command"], *entry["args"]], tmp_path)


@pytest.fixture(scope="module")
def server(http_server_factory: Any) -> Any:
    return http_server_factory()


def test_streamable_http(inspector: list[str], server: Any) -> None:
    target = [f"{server.base}/mcp", "--transport", "http"]
    record_then_retrieve(inspector, target, server.home)


def test_a_failing_tool_exits_0_and_is_caught_by_is_error(
    inspector: list[str], server: Any
) -> None:
    target = [f"{server.base}/mcp", "--transport", "http"]
    bad = call(
        inspector,
        target,
        "--method",
        "tools/call",
        "--tool-name",
        "get_case",
        "--tool-arg",
        "case_id=424242",
        home=server.home,
    )
    assert bad["isError"] is True
    assert "no case with case_id 424242" in bad["content"][0]["text"]
