"""code: run Python or shell commands in a sandbox, with a workspace to read, write and list.

Thin MCP layer over `sandbox` (containment) and `workspace` (files). See toolservers/README.md.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Annotated

from fastmcp import FastMCP
from fastmcp.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from toolservers._common import TextWindow
from toolservers.code.config import SandboxConfig
from toolservers.code.isolation import Isolation, detect
from toolservers.code.sandbox import RunResult, execute
from toolservers.code.workspace import Entry, Listing, Workspace

RelPath = Annotated[
    str,
    Field(
        description="path relative to the workspace root, e.g. 'data/out.csv'",
        min_length=1,
        max_length=1000,
    ),
]
Timeout = Annotated[
    float | None,
    Field(ge=0.5, le=600, description="wall-clock limit in seconds; default is the server's"),
]
_RUN = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=False)
_READ = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)


def build_server(config: SandboxConfig | None = None, workspace_dir: Path | None = None) -> FastMCP:
    """A code server with its own workspace; the isolation level is probed once, here."""
    config = config or SandboxConfig.from_env()
    if workspace_dir is None and os.environ.get("TOOLSERVERS_CODE_WORKSPACE"):
        workspace_dir = Path(os.environ["TOOLSERVERS_CODE_WORKSPACE"])
    owner = (config.uid, config.gid) if os.geteuid() == 0 else None
    workspace = Workspace(workspace_dir, owner)
    isolation = detect(config, workspace.root)
    mcp = FastMCP(
        "code",
        instructions=(
            "Run Python or shell in a sandbox. Files persist in the workspace between calls "
            f"(the code's working directory). Isolation: {isolation.level}. Call sandbox_info for details."
        ),
        mask_error_details=True,
    )

    def run(inner: list[str], stdin: str, timeout_s: float | None) -> RunResult:
        if isolation.runs_as_root and not config.allow_root:
            raise ToolError(
                f"refusing to run code: {isolation.note} Ask the operator to install bubblewrap."
            )
        limits = config.limits
        if timeout_s is not None:
            limits = replace(
                limits,
                wall_s=min(timeout_s, limits.wall_s),
                cpu_s=max(1, int(min(timeout_s, limits.cpu_s))),
            )
        with workspace.lock:
            return execute(
                inner,
                workspace.root,
                isolation.level,
                config,
                isolation.drop_to_uid is not None,
                stdin=stdin,
                limits=limits,
            )

    @mcp.tool(annotations=_RUN)
    def run_python(
        code: Annotated[
            str, Field(min_length=1, max_length=100_000, description="a Python 3 program")
        ],
        stdin: Annotated[
            str, Field(max_length=1_000_000, description="text fed to standard input")
        ] = "",
        timeout_s: Timeout = None,
    ) -> RunResult:
        """Run a Python program in the sandbox; print what you need. Files written land in the workspace.

        No network. Installed packages of the server's Python are importable. A non-null
        `killed_by` means a limit stopped the program (wall timeout, CPU, memory, file size).
        """
        return run([config.python, "-c", code], stdin, timeout_s)

    @mcp.tool(annotations=_RUN)
    def run_shell(
        command: Annotated[
            str, Field(min_length=1, max_length=20_000, description="a /bin/sh command line")
        ],
        stdin: Annotated[str, Field(max_length=1_000_000)] = "",
        timeout_s: Timeout = None,
    ) -> RunResult:
        """Run a shell command in the sandbox, in the workspace directory (no network)."""
        return run(["/bin/sh", "-c", command], stdin, timeout_s)

    @mcp.tool(
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=True, open_world_hint=False
        )
    )
    def write_file(
        path: RelPath,
        content: Annotated[str, Field(max_length=10_000_000, description="UTF-8 text to write")],
        append: bool = False,
    ) -> Entry:
        """Write (or append to) a text file in the workspace, creating folders as needed."""
        return workspace.write(path, content, append)

    @mcp.tool(annotations=_READ)
    def read_file(
        path: RelPath,
        offset: Annotated[int, Field(ge=0, description="character offset to start at")] = 0,
        max_chars: Annotated[int, Field(ge=1, le=200_000)] = 20_000,
    ) -> TextWindow:
        """Read a text file from the workspace; long files come in windows, continue with `next_offset`."""
        return workspace.read(path, offset, max_chars)

    @mcp.tool(annotations=_READ)
    def list_files(
        path: Annotated[str, Field(max_length=1000, description="folder in the workspace")] = ".",
    ) -> Listing:
        """List files and folders under a workspace folder, recursively (up to 500 entries)."""
        return workspace.list(path)

    @mcp.tool(annotations=_READ)
    def sandbox_info() -> Isolation:
        """Say how code is contained here (bwrap, unshare or none) and whether it runs as root."""
        return isolation

    @mcp.resource(
        "sandbox://info",
        mime_type="application/json",
        description="active isolation level and limits",
    )
    def sandbox_resource() -> str:
        limits = config.limits
        return json.dumps(
            {**isolation.model_dump(), "limits": limits.__dict__, "workspace": str(workspace.root)}
        )

    return mcp
