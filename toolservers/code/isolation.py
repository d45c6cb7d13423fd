"""Which containment this machine allows, and an honest account of what it enforces.

`detect` probes the levels strongest first (bwrap, unshare, none) and `describe` says, for the
one found, what is contained and, in `not_enforced`, what is not, so that a client (and the
tests, which skip on it) can tell a weaker sandbox from a broken one.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from toolservers.code.config import Level, SandboxConfig
from toolservers.code.sandbox import execute, is_root


class Isolation(BaseModel):
    """What containment is active: reported to clients by the `sandbox_info` tool."""

    level: Level
    drop_to_uid: int | None = Field(description="uid the code runs as, when the server drops root")
    runs_as_root: bool = Field(description="true means the code would have root on the host")
    nproc_enforced: bool = Field(
        description="whether the process-count limit can bite (not for root)"
    )
    network: Literal["none", "host"]
    filesystem: Literal["workspace-only", "host (unix permissions)"]
    processes: Literal["pid namespace", "process group"] = Field(
        description="pid namespace: every process a run starts is dead and reaped when the call "
        "returns; process group: a process that leaves the group (setsid) can outlive the run"
    )
    tmp: Literal["private tmpfs", "workspace", "host"] = Field(
        description="what /tmp is: a small private tmpfs, a per-run folder in the workspace "
        "(counted against its size limit), or the host's /tmp (TMPDIR still points into the "
        "workspace, but a file written to /tmp by name lands on the host, capped only per file)"
    )
    not_enforced: list[str] = Field(description="what this level cannot enforce, one line each")
    note: str


def _probe(level: Level, config: SandboxConfig, drop: bool, scratch: Path) -> bool:
    """Does a trivial Python run succeed at this level? Namespaces can be refused by the kernel."""
    if level in ("bwrap", "unshare") and not shutil.which(level):
        return False
    if (drop or (level == "unshare" and not is_root())) and not shutil.which("setpriv"):
        return False
    probe = replace(config.limits, wall_s=20, output_chars=200)
    result = execute(
        [config.python, "-c", "print('ok')"], scratch, level, config, drop, limits=probe
    )
    return result.exit_code == 0 and result.stdout.strip() == "ok"


def detect(config: SandboxConfig, scratch: Path) -> Isolation:
    """Pick the strongest containment that works here (or the configured one) and describe it.

    As root, each level is first tried with the drop to `config.uid`; a level where that fails
    (e.g. the interpreter sits under root's 0700 home) is tried as root, which `execute` callers
    refuse unless allowed.
    """
    if config in _DETECTED:
        return _DETECTED[config]
    levels: list[Level] = (
        ["bwrap", "unshare", "none"] if config.isolation == "auto" else [config.isolation]
    )
    drops = [True, False] if is_root() else [False]
    found = next(
        (
            (level, drop)
            for level in levels
            for drop in drops
            if _probe(level, config, drop, scratch)
        ),
        (levels[-1], False),
    )
    _DETECTED[config] = describe(*found, config)
    return _DETECTED[config]


# Probing costs a few sandbox starts, so it happens once per configuration.
_DETECTED: dict[SandboxConfig, Isolation] = {}

_NOTES = {
    "bwrap": "bubblewrap: read-only system, writable workspace only, private /tmp, no network, "
    "own PID namespace.",
    "unshare": "network, PID and mount namespaces: no network, nothing outlives a run, /tmp is a "
    "per-run folder in the workspace; the host filesystem is visible under unix permissions. "
    "Install bubblewrap for full isolation.",
    "none": "resource limits and a scrubbed environment only; no filesystem, network or process "
    "isolation. Install bubblewrap.",
}


def describe(level: Level, drop: bool, config: SandboxConfig) -> Isolation:
    """The report for `level`; `not_enforced` lists each guarantee this level lacks."""
    as_root = is_root() and not drop
    who = f"uid {config.uid}" if drop else "the server's user"
    missing = []
    if level != "bwrap":
        missing.append(f"filesystem: host files are readable, and writable where {who} may write")
    if level == "none":
        missing += [
            "network: the code has the host's network",
            "processes: a process that calls setsid() can outlive the run and is not reaped by it",
            (
                "/tmp: the host's; a file written to /tmp by name lands there (TMPDIR is in the "
                "workspace, and each file is capped at the file size limit)"
            ),
        ]
    if as_root:
        missing.append("privileges: the code would run as root")
    note = _NOTES[level]
    if as_root:
        note += " Code would run as root: refused unless TOOLSERVERS_CODE_ALLOW_ROOT=1."
    return Isolation(
        level=level,
        drop_to_uid=config.uid if drop else None,
        runs_as_root=as_root,
        nproc_enforced=not is_root() or drop,
        network="host" if level == "none" else "none",
        filesystem="workspace-only" if level == "bwrap" else "host (unix permissions)",
        processes="process group" if level == "none" else "pid namespace",
        tmp={"bwrap": "private tmpfs", "unshare": "workspace", "none": "host"}[level],
        not_enforced=missing,
        note=note,
    )
