"""Versions: atomic files, a gate that refuses worse models, a bad file falls back, rollback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from retriever.bank import InMemoryBank
from retriever.checkpoint import (
    CheckpointError,
    load_head,
    rollback,
    save_checkpoint,
    should_promote,
)
from retriever.model import QScorer, ScorerConfig
from retriever.online import OnlineTrainer, retrain
from retriever.train import TrainConfig

FillBank = Callable[..., None]


def _register(bank: InMemoryBank, tmp_path: Path, version: str, promote: bool = True) -> Path:
    config = ScorerConfig(embed_dim=bank.dim)
    path = save_checkpoint(
        tmp_path / f"{version}.pt",
        QScorer(config),
        config,
        version=version,
        metrics={},
        data_hash="x",
        step=1,
    )
    bank.add_retriever_version(version, str(path), {})
    if promote:
        bank.activate_retriever(version)
    return path


def test_save_load_round_trip_leaves_no_temp_files(tmp_path: Path) -> None:
    config = ScorerConfig(embed_dim=8, hidden=4)
    model = QScorer(config)
    path = save_checkpoint(
        tmp_path / "v.pt", model, config, version="v", metrics={"auc": 0.7}, data_hash="h", step=3
    )
    loaded, payload = load_head(path)
    assert [p.name for p in tmp_path.iterdir()] == ["v.pt"]
    assert (
        payload["metrics"] == {"auc": 0.7} and payload["step"] == 3 and payload["data_hash"] == "h"
    )
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values(), strict=True):
        assert np.array_equal(a.numpy(), b.numpy())


def test_gate() -> None:
    assert should_promote(0.70, 0.65)[0]
    assert should_promote(0.65, 0.65)[0]  # no worse is enough
    assert not should_promote(0.64, 0.65)[0]
    assert not should_promote(None, 0.5)[0]
    assert should_promote(0.6, None)[0]


def test_bad_checkpoint_falls_back_to_cosine(bank: InMemoryBank, tmp_path: Path) -> None:
    trainer = OnlineTrainer(bank, tmp_path, retrain_every=10)
    assert trainer.scorer() is None and "no trained version" in trainer.status()["fallback"]
    _register(bank, tmp_path, "good")
    assert trainer.scorer() is not None and trainer.scorer().version == "good"  # type: ignore[union-attr]

    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a torch file")
    bank.add_retriever_version("broken", str(broken), {})
    bank.activate_retriever("broken")
    assert trainer.scorer() is None
    status = trainer.status()
    assert status["scorer"] == "cosine" and "failed to load" in status["fallback"]
    with pytest.raises(CheckpointError):
        load_head(tmp_path / "missing.pt")


def test_promotion_refuses_a_worse_model(
    bank: InMemoryBank, tmp_path: Path, fill_bank: FillBank, fast_config: TrainConfig
) -> None:
    fill_bank(bank, 120)
    data = bank.training_set()
    first = retrain(bank, tmp_path, data, train_config=fast_config)
    assert first["promoted"], first["reason"]  # beats cosine on this task
    # a crippled candidate (one training step) must not replace the good incumbent
    worse = retrain(
        bank,
        tmp_path,
        data,
        train_config=TrainConfig(max_steps=1, min_steps=1, lr=1e-6, direct_lr=1e-6),
    )
    assert not worse["promoted"], worse["reason"]
    assert bank.active_retriever()["version"] == first["version"]  # type: ignore[index]
    assert {v["version"] for v in bank.retriever_versions()} == {first["version"], worse["version"]}
    assert Path(tmp_path / f"{worse['version']}.pt").exists()  # kept, not served


def test_rollback_returns_to_the_previous_version(bank: InMemoryBank, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError):
        rollback(bank)
    _register(bank, tmp_path, "a")
    with pytest.raises(CheckpointError):
        rollback(bank)
    _register(bank, tmp_path, "b", promote=False)
    _register(bank, tmp_path, "c")
    assert rollback(bank) == "a"  # b was never promoted
    assert bank.active_retriever()["version"] == "a"  # type: ignore[index]
    trainer = OnlineTrainer(bank, tmp_path, retrain_every=10)
    assert trainer.scorer().version == "a"  # type: ignore[union-attr]
