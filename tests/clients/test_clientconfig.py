"""`memento-mcp config CLIENT` prints each client's format, and docs/clients.md shows exactly that.

Each JSON block in the docs follows a `<!-- memento-mcp config ARGS -->` marker; the test runs that
command and compares. To regenerate the blocks after changing clientconfig.py, run this file with
MEMENTO_UPDATE_DOCS=1.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from memento_mcp import clientconfig
from memento_mcp.cli import app

DOCS = Path(__file__).resolve().parents[2] / "docs" / "clients.md"
PYTHON_PLACEHOLDER = "/path/to/venv/bin/python"
"""The docs show this where `memento-mcp config` prints the user's own interpreter."""

BLOCK = re.compile(r"<!-- (memento-mcp config [^>]*?) -->\n```json\n(.*?)```\n", re.DOTALL)


def run_config(command: str) -> dict[str, Any]:
    args = shlex.split(command)[1:]  # drop "memento-mcp"
    env = {key: None for key in os.environ if key.startswith("MEMENTO_")}
    result = CliRunner(env=env).invoke(app, args)
    assert result.exit_code == 0, result.output
    text = result.stdout.replace(json.dumps(sys.executable)[1:-1], PYTHON_PLACEHOLDER)
    return json.loads(text)  # type: ignore[no-any-return]


def test_docs_blocks_are_what_the_cli_prints() -> None:
    text = DOCS.read_text(encoding="utf-8")
    blocks = BLOCK.findall(text)
    assert len(blocks) >= 8, "docs/clients.md lost its generated config blocks"
    if os.environ.get("MEMENTO_UPDATE_DOCS"):

        def fresh(match: re.Match[str]) -> str:
            body = json.dumps(run_config(match.group(1)), indent=2)
            return f"<!-- {match.group(1)} -->\n```json\n{body}\n```\n"

        DOCS.write_text(BLOCK.sub(fresh, text), encoding="utf-8")
        return
    for command, shown in blocks:
        assert json.loads(shown) == run_config(command), (
            f"docs/clients.md block for `{command}` differs from its output;"
            " rerun with MEMENTO_UPDATE_DOCS=1"
        )


def test_docs_cover_every_client_over_stdio_and_http() -> None:
    commands = [shlex.split(command)[2:] for command, _ in BLOCK.findall(DOCS.read_text())]
    for client in ("claude-desktop", "cursor", "vscode", "generic"):
        forms = {
            "http" if "--url" in rest else "stdio" for name, *rest in commands if name == client
        }
        assert forms == {"stdio", "http"}, f"{client}: documented forms {forms}"


def test_stdio_entry_runs_this_interpreter_with_the_chosen_home() -> None:
    block = clientconfig.render("claude-desktop", env={"MEMENTO_HOME": "/data/memento"})
    assert block == {
        "mcpServers": {
            "memento": {
                "command": sys.executable,
                "args": ["-m", "memento_mcp", "serve"],
                "env": {"MEMENTO_HOME": "/data/memento"},
            }
        }
    }


def test_claude_desktop_reaches_http_through_mcp_remote_without_spaces_in_args() -> None:
    entry = clientconfig.render("claude-desktop", url="https://bank.example/mcp", token=True)[
        "mcpServers"
    ]["memento"]
    assert entry["command"] == "npx"
    assert "url" not in entry  # Claude Desktop drops url entries from its JSON
    assert not any(" " in arg for arg in entry["args"])  # mangled by npx on Windows otherwise
    assert entry["args"][-2:] == ["--header", "Authorization:${AUTH_HEADER}"]
    assert entry["env"] == {"AUTH_HEADER": "Bearer <your token>"}
    assert "--allow-http" not in entry["args"]


@pytest.mark.parametrize(
    ("url", "needs_flag"),
    [
        ("http://127.0.0.1:8000/mcp", False),
        ("http://localhost:8000/mcp", False),
        ("http://10.0.0.5:8000/mcp", True),
        ("https://10.0.0.5/mcp", False),
    ],
)
def test_mcp_remote_allows_plain_http_only_off_loopback_when_asked(
    url: str, needs_flag: bool
) -> None:
    args = clientconfig.render("claude-desktop", url=url)["mcpServers"]["memento"]["args"]
    assert ("--allow-http" in args) is needs_flag


def test_cursor_reads_the_token_from_the_environment() -> None:
    entry = clientconfig.render("cursor", url="http://127.0.0.1:8000/mcp", token=True)
    assert entry == {
        "mcpServers": {
            "memento": {
                "url": "http://127.0.0.1:8000/mcp",
                "headers": {"Authorization": "Bearer ${env:MEMENTO_AUTH_TOKEN}"},
            }
        }
    }


def test_vscode_uses_servers_with_a_type_and_prompts_for_the_token() -> None:
    block = clientconfig.render("vscode", url="http://127.0.0.1:8000/mcp", token=True)
    entry = block["servers"]["memento"]
    assert entry["type"] == "http"
    assert entry["headers"]["Authorization"] == "Bearer ${input:memento-token}"
    (prompt,) = block["inputs"]
    assert prompt["id"] == "memento-token" and prompt["password"] is True
    assert clientconfig.render("vscode")["servers"]["memento"]["type"] == "stdio"
    assert "inputs" not in clientconfig.render("vscode", url="http://127.0.0.1:8000/mcp")
