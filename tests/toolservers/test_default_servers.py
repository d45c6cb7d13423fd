"""default_mcp_servers(): the config memento-mcp uses to launch every child server."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from fastmcp import Client

from toolservers import SERVERS, default_mcp_servers


def test_lists_every_server_with_quiet_env() -> None:
    config = default_mcp_servers({"web": {"TOOLSERVERS_SEARXNG_URL": "http://127.0.0.1:8888"}})
    servers = config["mcpServers"]
    assert sorted(servers) == sorted(SERVERS) == ["code", "documents", "math", "tables", "web"]
    for name, entry in servers.items():
        assert entry["command"] == sys.executable and entry["args"] == ["-m", f"toolservers.{name}"]
        assert entry["env"]["FASTMCP_SHOW_SERVER_BANNER"] == "false"
        assert entry["env"]["FASTMCP_CHECK_FOR_UPDATES"] == "off"
        assert entry["env"]["FASTMCP_LOG_LEVEL"] == "ERROR"
    assert servers["web"]["env"]["TOOLSERVERS_SEARXNG_URL"] == "http://127.0.0.1:8888"
    assert "TOOLSERVERS_SEARXNG_URL" not in servers["math"]["env"]


def test_unknown_server_in_env_is_refused() -> None:
    with pytest.raises(ValueError, match="choose from code, math"):
        default_mcp_servers({"maths": {}})


@pytest.mark.anyio
async def test_readme_documents_every_tool(tmp_path: Path) -> None:
    from toolservers import documents, math, tables, web
    from toolservers.code import build_server

    readme = (Path(__file__).resolve().parents[2] / "toolservers" / "README.md").read_text()
    sections = dict(part.split("\n", 1) for part in readme.split("\n## ")[1:])
    servers = {
        "code": build_server(workspace_dir=tmp_path),
        "math": math.mcp,
        "documents": documents.mcp,
        "tables": tables.mcp,
        "web": web.mcp,
    }
    for name, server in servers.items():
        async with Client(server) as c:
            tools = [t for t in await c.list_tools()]
        assert tools, name
        for tool in tools:
            assert f"`{tool.name}(" in sections[name], f"{name}.{tool.name} is missing from README"
            assert tool.description, f"{name}.{tool.name} has no description"
