"""The JSON blocks users paste into their MCP clients, for `memento-mcp config CLIENT`.

docs/clients.md shows the same blocks; tests/clients/test_clientconfig.py checks that each one is
exactly what this module prints, so the docs cannot drift from the code.
"""

from __future__ import annotations

import ipaddress
import sys
from typing import Any, Literal
from urllib.parse import urlsplit

Client = Literal["claude-desktop", "cursor", "vscode", "generic"]

CONFIG_FILES: dict[Client, str] = {
    "claude-desktop": "claude_desktop_config.json (Settings → Developer → Edit Config)",
    "cursor": ".cursor/mcp.json in a project, or ~/.cursor/mcp.json for all projects",
    "vscode": ".vscode/mcp.json in a workspace (or 'MCP: Open User Configuration')",
    "generic": "your client's mcpServers configuration",
}

TOKEN_PLACEHOLDER = "<your token>"

# How each client lets the token stay out of the file: Cursor interpolates ${env:VAR}, VS Code
# prompts once for an `inputs` entry and stores it as a secret; generic clients get a placeholder.
_TOKEN_REFERENCE: dict[Client, str] = {
    "cursor": "${env:MEMENTO_AUTH_TOKEN}",
    "vscode": "${input:memento-token}",
    "generic": TOKEN_PLACEHOLDER,
}


def stdio_entry(env: dict[str, str]) -> dict[str, Any]:
    """Launch through this very interpreter, so the client finds the installed package."""
    entry: dict[str, Any] = {"command": sys.executable, "args": ["-m", "memento_mcp", "serve"]}
    if env:
        entry["env"] = env
    return entry


def _is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def mcp_remote_entry(url: str, token: bool) -> dict[str, Any]:
    """Claude Desktop's JSON only holds stdio servers, so bridge to HTTP with mcp-remote.

    The header is `Authorization:${AUTH_HEADER}` without spaces because Claude Desktop on Windows
    (and Cursor) pass args to npx unquoted; mcp-remote expands ${AUTH_HEADER} from `env` itself.
    mcp-remote refuses plain http:// beyond loopback unless given --allow-http.
    """
    args = ["-y", "mcp-remote", url]
    if url.startswith("http://") and not _is_loopback_url(url):
        args.append("--allow-http")
    entry: dict[str, Any] = {"command": "npx", "args": args}
    if token:
        args += ["--header", "Authorization:${AUTH_HEADER}"]
        entry["env"] = {"AUTH_HEADER": f"Bearer {TOKEN_PLACEHOLDER}"}
    return entry


def http_entry(client: Client, url: str, token: bool) -> dict[str, Any]:
    """A direct streamable-HTTP entry (Cursor, VS Code, generic clients)."""
    entry: dict[str, Any] = {"type": "http", "url": url} if client == "vscode" else {"url": url}
    if token:
        entry["headers"] = {"Authorization": "Bearer " + _TOKEN_REFERENCE[client]}
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
    elif client == "claude-desktop":
        entry = mcp_remote_entry(url, token)
    else:
        entry = http_entry(client, url, token)
    if client != "vscode":
        return {"mcpServers": {name: entry}}
    block: dict[str, Any] = {"servers": {name: entry}}
    if url is not None and token:
        block["inputs"] = [
            {
                "type": "promptString",
                "id": "memento-token",
                "description": "Memento bearer token (MEMENTO_AUTH_TOKEN on the server)",
                "password": True,
            }
        ]
    return block
