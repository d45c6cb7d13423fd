"""The JSON blocks users paste into their MCP clients, for `memento-mcp config CLIENT`."""

from __future__ import annotations

import sys
from typing import Any, Literal

Client = Literal["claude-desktop", "cursor", "vscode", "generic"]

CONFIG_FILES: dict[Client, str] = {
    "claude-desktop": "claude_desktop_config.json (Settings → Developer → Edit Config)",
    "cursor": ".cursor/mcp.json in a project, or ~/.cursor/mcp.json for all projects",
    "vscode": ".vscode/mcp.json in a workspace (or 'MCP: Open User Configuration')",
    "generic": "your client's mcpServers configuration",
}


def stdio_entry(env: dict[str, str]) -> dict[str, Any]:
    """Launch through this very interpreter, so the client finds the installed package."""
    entry: dict[str, Any] = {"command": sys.executable, "args": ["-m", "memento_mcp", "serve"]}
    if env:
        entry["env"] = env
    return entry


def http_entry(client: Client, url: str, token_env: str | None) -> dict[str, Any]:
    if client == "claude-desktop":
        # Claude Desktop's JSON only holds stdio servers: bridge to HTTP with mcp-remote.
        args = ["-y", "mcp-remote", url]
        entry: dict[str, Any] = {"command": "npx", "args": args}
        if token_env:
            args += ["--header", "Authorization: Bearer ${MEMENTO_AUTH_TOKEN}"]
            entry["env"] = {"MEMENTO_AUTH_TOKEN": "<your token>"}
        return entry
    entry = {"url": url}
    if client == "vscode":
        entry["type"] = "http"
    if token_env:
        entry["headers"] = {"Authorization": "Bearer " + token_env}
    return entry


def render(
    client: Client,
    *,
    env: dict[str, str] | None = None,
    url: str | None = None,
    token: bool = False,
    name: str = "memento",
) -> dict[str, Any]:
    """The whole block for `client`: stdio by default, the HTTP form when a URL is given."""
    if url is None:
        entry = stdio_entry(env or {})
        if client == "vscode":
            entry = {"type": "stdio", **entry}
    else:
        token_ref = {"cursor": "${env:MEMENTO_AUTH_TOKEN}", "vscode": "${input:memento-token}"}
        entry = http_entry(client, url, token_ref.get(client, "<your token>") if token else None)
    if client != "vscode":
        return {"mcpServers": {name: entry}}
    block: dict[str, Any] = {"servers": {name: entry}}
    if url is not None and token:
        block["inputs"] = [
            {
                "type": "promptString",
                "id": "memento-token",
                "description": "Memento bearer token",
                "password": True,
            }
        ]
    return block
