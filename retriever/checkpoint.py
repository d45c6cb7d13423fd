"""Checkpoint files: the torch checkpoint, and the numpy weights that serve beside it.

A checkpoint is one torch file, {state_dict, config, metrics, data_hash, step, version, kind},
and for a head also `<version>.npz` (scorer.HeadModel's arrays), so that serving never loads
torch. Both are written to a temporary name and `os.replace`d into place, the .npz last, so a
reader never sees half a file and a registered .npz always has its .pt. Naming, rollback and
pruning live in versions.py, which needs no torch.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from retriever.model import HeadConfig, PriorHead
from retriever.versions import CheckpointError, serving_path


def _atomic(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def head_arrays(model: PriorHead) -> dict[str, np.ndarray]:
    """The head's weights as scorer.HeadModel reads them."""
    first, last = cast(nn.Linear, model.mlp[1]), cast(nn.Linear, model.mlp[4])  # Dropout, Linear..
    return {
        "w1": first.weight.detach().numpy().T.copy(),  # (F, H)
        "b1": first.bias.detach().numpy().copy(),  # (H,)
        "w2": last.weight.detach().numpy()[0].copy(),  # (H,)
        "b2": np.array(float(last.bias.item() + model.wide.bias.item()), np.float32),
        "w_wide": model.wide.weight.detach().numpy()[0].copy(),  # (3,)
        "memory_q": model.memory_q.numpy().copy(),  # (M, D) the kept requests' queries
        "memory_r": model.memory_r.numpy().copy(),  # (M,) and their outcomes
        "kernel_temperature": np.array(model.config.kernel_temperature, np.float32),
    }


def save_checkpoint(
    path: Path,
    model: nn.Module,
    config: HeadConfig,
    *,
    version: str,
    metrics: dict[str, Any],
    data_hash: str,
    step: int,
    kind: str = "head",
) -> Path:
    """Write `path` (and for a head its .npz) atomically; returns `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "state_dict": model.state_dict(),
        "config": asdict(config),
        "metrics": metrics,
        "data_hash": data_hash,
        "step": step,
        "version": version,
        "kind": kind,
    }
    _atomic(path, lambda tmp: torch.save(payload, tmp))
    if kind == "head":
        arrays = head_arrays(cast(PriorHead, model))
        _atomic(serving_path(path), lambda tmp: np.savez(tmp, **arrays))
    return path


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint dict; CheckpointError for anything that is not one of ours."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file: all mean "cannot load"
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
    if not isinstance(payload, dict) or not {"state_dict", "config"} <= payload.keys():
        raise CheckpointError(f"{path} is not a prior-head checkpoint")
    return payload


def load_head(path: Path) -> tuple[PriorHead, dict[str, Any]]:
    """A head in eval mode (offline evaluation and tests) and its checkpoint dict."""
    payload = read_checkpoint(path)
    if payload.get("kind", "head") != "head":
        raise CheckpointError(f"{path} holds a {payload['kind']!r} model, not a head")
    try:
        model = PriorHead(HeadConfig(**payload["config"]))
        state = dict(payload["state_dict"])
        if "memory_q" not in state:  # saved before the query kernel: none, and no weight on it
            state["memory_q"], state["memory_r"] = model.memory_q, model.memory_r
            state["wide.weight"] = torch.nn.functional.pad(state["wide.weight"], (0, 1))
        model.set_memory(state["memory_q"], state["memory_r"])  # sized by what was kept
        model.load_state_dict(state)
    except (TypeError, RuntimeError, KeyError) as exc:
        raise CheckpointError(f"{path} does not match the prior head's shape: {exc}") from exc
    return model.eval(), payload
