"""Versions: atomic files in two formats, a bad file serves no prior, rollback, pruning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from retriever.bank import InMemoryBank
from retriever.checkpoint import load_head, save_checkpoint
from retriever.model import HeadConfig, PriorHead
from retriever.online import OnlineTrainer
from retriever.versions import CheckpointError, prune, rollback, serving_path

DIM = 16


def _register(
    bank: InMemoryBank, tmp_path: Path, version: str, promote: bool = True, namespace: str = "a"
) -> Path:
    config = HeadConfig(embed_dim=DIM)
    path = save_checkpoint(
        tmp_path / f"{version}.pt", PriorHead(config), config,
        version=version, metrics={}, data_hash="x", step=1,
    )  # fmt: skip
    bank.add_retriever_version(version, str(path), {}, namespace)
    if promote:
        bank.activate_retriever(version)
    return path


def test_save_writes_torch_and_numpy_files_and_no_temp_files(tmp_path: Path) -> None:
    config = HeadConfig(embed_dim=8, hidden=4)
    model = PriorHead(config)
    path = save_checkpoint(
        tmp_path / "v.pt", model, config, version="v", metrics={"auc": 0.7}, data_hash="h", step=3
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.npz", "v.pt"]
    loaded, payload = load_head(path)
    assert payload["metrics"] == {"auc": 0.7} and payload["step"] == 3
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values(), strict=True):
        assert np.array_equal(a.numpy(), b.numpy())


def test_bad_checkpoint_serves_no_prior_with_the_reason(tmp_path: Path) -> None:
    bank = InMemoryBank(dim=DIM)
    trainer = OnlineTrainer(bank, tmp_path, retrain_every=10)
    assert trainer.model("a") is None and "no promoted version" in trainer.status("a")["fallback"]
    _register(bank, tmp_path, "good")
    model = trainer.model("a")
    assert model is not None and model.version == "good"
    assert model.predict(np.ones(DIM), np.ones((3, DIM)), np.ones((3, DIM))).shape == (3,)

    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    serving_path(broken).write_bytes(b"not an npz either")
    bank.add_retriever_version("broken", str(broken), {}, "a")
    bank.activate_retriever("broken")
    assert trainer.model("a") is None
    status = trainer.status("a")
    assert status["model"] is None and "broken failed to load" in status["fallback"]

    _register(bank, tmp_path, "gone")
    serving_path(tmp_path / "gone.pt").unlink()  # the .npz deleted under a live version
    assert trainer.model("a") is None and "gone" in trainer.status("a")["fallback"]
    with pytest.raises(CheckpointError):
        load_head(tmp_path / "missing.pt")


def test_rollback_is_per_namespace(tmp_path: Path) -> None:
    bank = InMemoryBank(dim=DIM)
    with pytest.raises(CheckpointError):
        rollback(bank, "a")
    _register(bank, tmp_path, "a1")
    with pytest.raises(CheckpointError):
        rollback(bank, "a")
    _register(bank, tmp_path, "b1", namespace="b")
    _register(bank, tmp_path, "a2", promote=False)
    _register(bank, tmp_path, "a3")
    _register(bank, tmp_path, "b2", namespace="b")
    assert rollback(bank, "a") == "a1"  # a2 was never promoted
    trainer = OnlineTrainer(bank, tmp_path, retrain_every=10)
    assert trainer.model("a").version == "a1"  # type: ignore[union-attr]
    assert trainer.model("b").version == "b2"  # type: ignore[union-attr]
    assert rollback(bank, "a") == "a3"  # a second rollback undoes the first


def test_pruning_keeps_the_active_and_the_newest_n_inactive(tmp_path: Path) -> None:
    bank = InMemoryBank(dim=DIM)
    _register(bank, tmp_path, "v0")  # active, and the oldest
    for i in range(1, 8):
        _register(bank, tmp_path, f"v{i}", promote=False)
    _register(bank, tmp_path, "other", promote=False, namespace="b")
    deleted = prune(bank, "a", keep=3)
    assert deleted == ["v1", "v2", "v3", "v4"]
    kept = {v["version"] for v in bank.retriever_versions("a")}
    assert kept == {"v0", "v5", "v6", "v7"}
    names = {p.name for p in tmp_path.iterdir()}
    assert names == {f"{v}.{ext}" for v in kept | {"other"} for ext in ("pt", "npz")}
    assert prune(bank, "a", keep=3) == []
