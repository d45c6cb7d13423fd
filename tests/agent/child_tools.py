"""A small stdio child tool server for the agent tests (the real toolservers/ replace it where they exist)."""

from __future__ import annotations

import os
import sys
import time

from fastmcp import FastMCP
from fastmcp.exceptions import ToolError

mcp = FastMCP("child")


@mcp.tool
def add(a: float, b: float) -> float:
    """Add two numbers."""
    return a + b


@mcp.tool
def multiply(a: float, b: float) -> float:
    """Multiply two numbers."""
    return a * b


@mcp.tool
def stats(values: list[float]) -> dict:
    """Sum and mean of a list of numbers."""
    return {"sum": sum(values), "mean": sum(values) / len(values) if values else None}


@mcp.tool
def env(name: str) -> str:
    """The value of an environment variable in this child, or '<unset>'."""
    return os.environ.get(name, "<unset>")


@mcp.tool
def fail(message: str) -> str:
    """Always fails with the given message."""
    raise ToolError(message)


@mcp.tool
def crash() -> str:
    """Kills this server process."""
    sys.stderr.flush()
    os._exit(3)


@mcp.tool
def sleep(seconds: float) -> str:
    """Sleeps, then says so."""
    time.sleep(seconds)
    return f"slept {seconds}"


@mcp.tool
def pid() -> int:
    """This child's process id."""
    return os.getpid()


if __name__ == "__main__":
    mcp.run(show_banner=False)
