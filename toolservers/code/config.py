"""Sandbox settings: resource limits and the isolation choice, read once from the environment."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Literal

from toolservers._common import env_flag, env_int

Level = Literal["bwrap", "unshare", "none"]


@dataclass(frozen=True)
class Limits:
    """Per-run resource limits; each maps to one rlimit or to the wall clock."""

    wall_s: float = 30.0
    cpu_s: int = 30
    memory_bytes: int = 1 << 30
    file_bytes: int = 64 << 20
    nproc: int = 64
    open_files: int = 256
    output_chars: int = 20_000
    tmp_bytes: int = (
        64 << 20
    )  # size of the private /tmp (a tmpfs: RAM, not covered by memory_bytes)
    workspace_bytes: int = 512 << 20  # growth allowed in the workspace during a run


@dataclass(frozen=True)
class SandboxConfig:
    """Everything the sandbox reads from the environment, so tests can build one directly."""

    isolation: Literal["auto", "bwrap", "unshare", "none"] = "auto"
    uid: int = 65534
    gid: int = 65534
    python: str = sys.executable
    env_allow: tuple[str, ...] = ()
    allow_root: bool = False
    limits: Limits = field(default_factory=Limits)

    @classmethod
    def from_env(cls) -> SandboxConfig:
        limits = Limits(
            wall_s=env_int("TOOLSERVERS_CODE_TIMEOUT_S", 30),
            cpu_s=env_int("TOOLSERVERS_CODE_CPU_S", 30),
            memory_bytes=env_int("TOOLSERVERS_CODE_MEMORY_MB", 1024) << 20,
            file_bytes=env_int("TOOLSERVERS_CODE_FILE_MB", 64) << 20,
            nproc=env_int("TOOLSERVERS_CODE_NPROC", 64),
            output_chars=env_int("TOOLSERVERS_CODE_OUTPUT_CHARS", 20_000),
            tmp_bytes=env_int("TOOLSERVERS_CODE_TMP_MB", 64) << 20,
            workspace_bytes=env_int("TOOLSERVERS_CODE_WORKSPACE_MB", 512) << 20,
        )
        isolation = os.environ.get("TOOLSERVERS_CODE_ISOLATION", "auto")
        if isolation not in ("auto", "bwrap", "unshare", "none"):
            raise ValueError(
                f"TOOLSERVERS_CODE_ISOLATION={isolation!r}; use auto, bwrap, unshare or none"
            )
        allow = os.environ.get("TOOLSERVERS_CODE_ENV_ALLOW", "")
        return cls(
            isolation=isolation,  # type: ignore[arg-type]
            uid=env_int("TOOLSERVERS_CODE_UID", 65534),
            gid=env_int("TOOLSERVERS_CODE_GID", 65534),
            python=os.environ.get("TOOLSERVERS_CODE_PYTHON", sys.executable),
            env_allow=tuple(n.strip() for n in allow.split(",") if n.strip()),
            allow_root=env_flag("TOOLSERVERS_CODE_ALLOW_ROOT"),
            limits=limits,
        )
