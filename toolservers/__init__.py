"""Child MCP tool servers for memento-mcp (and any MCP client): code, math, documents, tables, web.

Each runs alone over stdio with `python -m toolservers.<name>`. `default_mcp_servers()` gives the
Claude-Desktop-style config that launches all five with this interpreter.
"""

from __future__ import annotations

import sys
from typing import Any

SERVERS = ("code", "math", "documents", "tables", "web")
QUIET_ENV = {
    "FASTMCP_SHOW_SERVER_BANNER": "false",
    "FASTMCP_CHECK_FOR_UPDATES": "off",
    "FASTMCP_LOG_LEVEL": "ERROR",
}

__all__ = ["SERVERS", "default_mcp_servers"]


def default_mcp_servers(env: dict[str, dict[str, str]] | None = None) -> dict[str, Any]:
    """`{"mcpServers": {...}}` launching every server with `sys.executable -m toolservers.<name>`.

    `env` adds per-server settings, e.g. `{"web": {"TOOLSERVERS_SEARXNG_URL": "http://..."}}`;
    stdio children inherit almost nothing from the parent, so settings must be passed this way.
    """
    extra = env or {}
    unknown = set(extra) - set(SERVERS)
    if unknown:
        raise ValueError(f"unknown server(s) {sorted(unknown)}; choose from {', '.join(SERVERS)}")
    return {
        "mcpServers": {
            name: {
                "command": sys.executable,
                "args": ["-m", f"toolservers.{name}"],
                "env": {**QUIET_ENV, **extra.get(name, {})},
            }
            for name in SERVERS
        }
    }
