"""Shared fixtures for the tool-server tests."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from fastmcp.client.transports import StdioTransport

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def stdio() -> Callable[..., StdioTransport]:
    """A factory of transports that start `python -m toolservers.<module>`, as an MCP client would."""
    return _stdio


def _stdio(module: str, **env: str) -> StdioTransport:
    quiet = {
        "FASTMCP_SHOW_SERVER_BANNER": "false",
        "FASTMCP_CHECK_FOR_UPDATES": "off",
        "FASTMCP_LOG_LEVEL": "ERROR",
        "PYTHONPATH": str(REPO),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    }
    return StdioTransport(
        sys.executable, ["-m", f"toolservers.{module}"], env=quiet | env, cwd=str(REPO)
    )
