"""Shared pieces of the tool servers: output windows, path confinement, settings, killable work.

Every server returns long text through `window()` so a model can page with `offset`, confines
file arguments with `resolve_inside()`, and runs work that may hang (sympy, converters) in a `Worker` child.
"""

from __future__ import annotations

import os
import pickle
import select
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastmcp import FastMCP
from fastmcp.exceptions import ToolError
from pydantic import BaseModel, Field


class TextWindow(BaseModel):
    """A slice of a long text, with what to pass next to read on."""

    text: str
    offset: int = Field(description="index of the first character of `text` in the full text")
    total_chars: int
    next_offset: int | None = Field(None, description="pass as `offset` to read on; null at end")
    hint: str | None = None


def window(text: str, offset: int, max_chars: int) -> TextWindow:
    """Cut `text[offset:offset+max_chars]` and say how to continue, so no output floods a context."""
    if offset < 0 or (offset > 0 and offset >= len(text)):
        raise ToolError(
            f"offset {offset} is outside the text ({len(text)} characters); use 0 <= offset < {len(text)}."
        )
    end = min(len(text), offset + max_chars)
    more = end < len(text)
    return TextWindow(
        text=text[offset:end],
        offset=offset,
        total_chars=len(text),
        next_offset=end if more else None,
        hint=f"Truncated: {len(text) - end} more characters; call again with offset={end}."
        if more
        else None,
    )


def resolve_inside(root: Path, relative: str, label: str = "workspace") -> Path:
    """Resolve a user-given path under `root`, refusing anything that lands outside it.

    Absolute paths and `..` are refused outright; the rest is resolved (following symlinks) and
    must still be inside `root`, which catches symlinks that point out of the tree. `label`
    names the root in messages ("workspace", "documents root").
    """
    if "\x00" in relative:
        raise ToolError(
            "path contains a NUL byte; give a plain relative path like 'data/input.csv'."
        )
    candidate = Path(relative)
    if candidate.is_absolute():
        raise ToolError(f"path {relative!r} is absolute; give a path relative to the {label}.")
    if ".." in candidate.parts:
        raise ToolError(f"path {relative!r} contains '..'; paths must stay inside the {label}.")
    real_root = root.resolve()
    resolved = (real_root / candidate).resolve()
    if not resolved.is_relative_to(real_root):
        raise ToolError(
            f"path {relative!r} resolves outside the {label} (a symlink points out); refused."
        )
    return resolved


def env_int(name: str, default: int) -> int:
    """Read an integer setting from the environment, failing loudly on junk."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"environment variable {name}={raw!r} is not an integer") from exc


def env_flag(name: str) -> bool:
    """True for 1/true/yes/on (any case): the one spelling rule for boolean settings."""
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def files_root(server: str) -> Path:
    """The directory a file-reading server may read: TOOLSERVERS_<SERVER>_ROOT, else TOOLSERVERS_FILES_ROOT, else cwd."""
    raw = os.environ.get(f"TOOLSERVERS_{server.upper()}_ROOT") or os.environ.get(
        "TOOLSERVERS_FILES_ROOT"
    )
    return Path(raw).resolve() if raw else Path.cwd().resolve()


class Worker:
    """A long-lived child interpreter that runs one call at a time and is killed when it overruns.

    A Python thread cannot be stopped once stuck (`9**9**9**9`, a pathological PDF), so such
    work goes to `python -m toolservers._worker`, which has imported `preload` once and caps its
    own memory. On timeout or crash the child is killed and the next call starts a fresh one.
    The child speaks length-prefixed pickles over its own pipes, never the server's stdio.
    """

    def __init__(self, preload: str, memory_bytes: int, task: str = "computation") -> None:
        """`preload`: comma-separated modules the child imports first; `task` names the work in errors."""
        self._task = task
        self._argv = [sys.executable, "-m", "toolservers._worker", str(memory_bytes), preload]
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def call(self, fn: Callable[..., Any], *args: Any, timeout_s: float) -> Any:
        """Run `fn(*args)` (a module-level function) in the child; ToolError on error or overrun."""
        with self._lock:
            proc = self._proc if self._proc and self._proc.poll() is None else self._start()
            payload = pickle.dumps((fn.__module__, fn.__qualname__, args))
            assert proc.stdin is not None and proc.stdout is not None
            try:
                proc.stdin.write(struct.pack("!I", len(payload)) + payload)
                proc.stdin.flush()
                header = _read_exact(proc.stdout.fileno(), 4, time.monotonic() + timeout_s)
                (size,) = struct.unpack("!I", header)
                status, value = pickle.loads(
                    _read_exact(proc.stdout.fileno(), size, time.monotonic() + 30)
                )
            except TimeoutError:
                self.close()
                raise ToolError(
                    f"the {self._task} did not finish within {timeout_s:g} s and was stopped; "
                    "simplify the input or split the problem."
                ) from None
            except (EOFError, BrokenPipeError):
                self.close()
                raise ToolError(
                    f"the {self._task} crashed (probably out of memory) and was stopped; "
                    "try a smaller input."
                ) from None
        if status == "tool_error":
            raise ToolError(value)
        return value

    def close(self) -> None:
        """Kill the child; the next call starts a new one."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            for pipe in (self._proc.stdin, self._proc.stdout):
                if pipe is not None:
                    pipe.close()
            self._proc = None

    def _start(self) -> subprocess.Popen[bytes]:
        self.close()
        proc = subprocess.Popen(self._argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._proc = proc
        assert proc.stdout is not None
        try:  # the child says "R" once its imports are done, so startup never eats a call's time
            _read_exact(proc.stdout.fileno(), 1, time.monotonic() + 120)
        except (TimeoutError, EOFError):
            self.close()
            raise ToolError(
                "the worker process failed to start; see the server's stderr."
            ) from None
        return proc


def _read_exact(fd: int, size: int, deadline: float) -> bytes:
    chunks: list[bytes] = []
    while size:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            raise TimeoutError
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def serve(mcp: FastMCP) -> None:
    """Run a server over stdio without the banner, which would otherwise check PyPI for updates."""
    mcp.run("stdio", show_banner=False)
