"""Versioned checkpoints, the promotion gate, and rollback.

A checkpoint is one torch file: {state_dict, config, metrics, data_hash, step, version, kind}.
It is written to a temporary name and `os.replace`d into place, so a reader never sees half a
file. Which version serves is the case bank's business (`retriever_versions` table, one
transaction flips the active flag): the file system holds weights, the bank holds the truth.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from retriever.bank import Bank
from retriever.model import QScorer, ScorerConfig

GATE_METRIC = "auc"


class CheckpointError(Exception):
    """Raised when a checkpoint file is missing, unreadable or not a Q-scorer."""


def new_version() -> str:
    """Sortable and unique across processes: a UTC timestamp and a random suffix."""
    return f"q{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def save_checkpoint(
    path: Path,
    model: torch.nn.Module,
    config: ScorerConfig,
    *,
    version: str,
    metrics: dict[str, Any],
    data_hash: str,
    step: int,
    kind: str = "head",
) -> Path:
    """Write atomically (temp file + os.replace); returns `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    payload = {
        "state_dict": model.state_dict(),
        "config": asdict(config),
        "metrics": metrics,
        "data_hash": data_hash,
        "step": step,
        "version": version,
        "kind": kind,
    }
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint dict; CheckpointError for anything that is not one of ours."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file: all mean "cannot load"
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
    if not isinstance(payload, dict) or not {"state_dict", "config"} <= payload.keys():
        raise CheckpointError(f"{path} is not a Q-scorer checkpoint")
    return payload


def load_head(path: Path) -> tuple[QScorer, dict[str, Any]]:
    """A ready-to-serve head (eval mode) and its checkpoint dict."""
    payload = read_checkpoint(path)
    if payload.get("kind", "head") != "head":
        raise CheckpointError(f"{path} holds a {payload['kind']!r} model; only heads serve online")
    try:
        model = QScorer(ScorerConfig(**payload["config"]))
        model.load_state_dict(payload["state_dict"])
    except (TypeError, RuntimeError) as exc:
        raise CheckpointError(f"{path} does not match the Q-scorer's shape: {exc}") from exc
    return model.eval(), payload


def should_promote(
    candidate: float | None, incumbent: float | None, tolerance: float = 0.0
) -> tuple[bool, str]:
    """The gate: promote only when the candidate is no worse than what serves now, on the same rows.

    `incumbent` is the active version's held-out AUC, or cosine's at cold start. An undefined
    candidate AUC (a held-out slice with one class only) never promotes: no evidence, no change.
    """
    if candidate is None:
        return False, "held-out slice has a single class; AUC undefined"
    if incumbent is None:
        return True, f"{GATE_METRIC} {candidate:.4f}; incumbent undefined"
    margin = f" - {tolerance:.4f}" if tolerance else ""
    if candidate + tolerance >= incumbent:
        return True, f"{GATE_METRIC} {candidate:.4f} >= incumbent {incumbent:.4f}{margin}"
    return False, f"{GATE_METRIC} {candidate:.4f} < incumbent {incumbent:.4f}{margin}"


def rollback(bank: Bank) -> str:
    """Activate the version promoted before the active one; returns it.

    Promotion stamps `promoted_at`, so a rollback is itself a promotion: a second rollback undoes
    the first (it returns to the version just left), it does not walk further back in history.
    """
    versions = [v for v in bank.retriever_versions() if v.get("promoted_at")]
    active = next((v for v in versions if v.get("active")), None)
    if active is None:
        raise CheckpointError("no active retriever version to roll back from")
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
