"""Versions as the case bank records them: naming, rollback and pruning. Torch-free.

Which version serves a namespace is the case bank's business (`retriever_versions` rows, one
transaction flips the active flag); the checkpoint directory only holds weights: `<version>.pt`
(torch, for training and offline evaluation) and `<version>.npz` beside it (numpy, for serving).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from retriever.contract import Bank


class CheckpointError(Exception):
    """Raised when a checkpoint file is missing, unreadable or not a prior head."""


def new_version() -> str:
    """Sortable and unique across processes: a UTC timestamp and a random suffix."""
    return f"q{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def serving_path(checkpoint: str | Path) -> Path:
    """The numpy weights written beside a `.pt` checkpoint."""
    return Path(checkpoint).with_suffix(".npz")


def rollback(bank: Bank, namespace: str) -> str:
    """Activate the version of `namespace` promoted before the active one; returns it.

    Promotion stamps `promoted_at`, so a rollback is itself a promotion: a second rollback undoes
    the first (it returns to the version just left), it does not walk further back in history.
    """
    versions = [v for v in bank.retriever_versions(namespace) if v.get("promoted_at")]
    active = next((v for v in versions if v.get("active")), None)
    if active is None:
        raise CheckpointError(f"no active retriever version in namespace {namespace!r}")
    earlier = [
        v
        for v in versions
        if v["promoted_at"] < active["promoted_at"] and v["version"] != active["version"]
    ]
    if not earlier:
        raise CheckpointError(
            f"{active['version']} is the first promoted version; nothing to roll back to"
        )
    target = max(earlier, key=lambda v: v["promoted_at"])
    bank.activate_retriever(target["version"])
    return str(target["version"])


def prune(bank: Bank, namespace: str, keep: int) -> list[str]:
    """Delete all but the newest `keep` inactive versions of `namespace` (files and rows).

    The active version is never touched, so rollback always has the active one and the `keep`
    before it. Returns the versions deleted.
    """
    inactive = [v for v in bank.retriever_versions(namespace) if not v["active"]]
    inactive.sort(key=lambda v: v["created_at"])
    doomed = inactive[: max(0, len(inactive) - keep)]
    for row in doomed:
        bank.delete_retriever_version(row["version"])
        Path(row["path"]).unlink(missing_ok=True)
        serving_path(row["path"]).unlink(missing_ok=True)
    return [str(row["version"]) for row in doomed]


def last_run_path(checkpoint_dir: Path, namespace: str) -> Path:
    """Where a namespace's last training run is recorded, readable from any process."""
    slug = re.sub(r"[^A-Za-z0-9_.-]", "_", namespace)[:40]
    digest = hashlib.blake2b(namespace.encode(), digest_size=4).hexdigest()
    return Path(checkpoint_dir) / f"last-run.{slug}.{digest}.json"


def read_last_run(checkpoint_dir: Path, namespace: str) -> dict[str, Any] | None:
    try:
        run: dict[str, Any] = json.loads(last_run_path(checkpoint_dir, namespace).read_text())
    except (OSError, ValueError):
        return None
    return run


def write_last_run(checkpoint_dir: Path, namespace: str, run: dict[str, Any]) -> None:
    """Record a run (atomically), adding its pruned checkpoints to the namespace's running total."""
    previous = read_last_run(checkpoint_dir, namespace) or {}
    run = run | {"pruned_total": previous.get("pruned_total", 0) + len(run.get("pruned", []))}
    path = last_run_path(checkpoint_dir, namespace)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    tmp.write_text(json.dumps(run, default=str))
    os.replace(tmp, path)
