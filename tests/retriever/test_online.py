"""The background loop: never blocks, never runs twice at once, loses no impression."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from retriever.bank import InMemoryBank
from retriever.data import as_training_set, held_out_mask
from retriever.online import OnlineTrainer
from retriever.train import TrainConfig

FillBank = Callable[..., None]


def test_retrains_in_background_and_promotes(
    bank: InMemoryBank, tmp_path: Path, fill_bank: FillBank, fast_config: TrainConfig
) -> None:
    trainer = OnlineTrainer(bank, tmp_path, retrain_every=100, train_config=fast_config)
    fill_bank(bank, 100)
    trainer.notify_labelled(99)
    assert trainer.status()["training"] is False and trainer.status()["labels_waiting"] == 99
    t0 = time.perf_counter()
    trainer.notify_labelled(301)
    assert time.perf_counter() - t0 < 0.05  # the caller does not wait for training
    trainer.wait_idle(timeout=60)
    status = trainer.status()
    assert status["last_run"]["promoted"], status["last_run"]
    assert status["scorer"] == status["active_version"] and status["fallback"] is None
    assert status["active_metrics"]["auc"] > status["active_metrics"]["baseline_cosine_auc"]


def test_training_while_impressions_arrive_loses_none(
    bank: InMemoryBank, tmp_path: Path, fill_bank: FillBank, fast_config: TrainConfig
) -> None:
    trainer = OnlineTrainer(bank, tmp_path, retrain_every=40, train_config=fast_config)
    runs = []
    original = trainer._run

    def counting_run() -> None:
        runs.append(threading.active_count())
        original()

    trainer._run = counting_run  # type: ignore[method-assign]
    fill_bank(bank, 30, seed=0)
    for seed in range(1, 8):  # 7 batches of 40 labels, each notified while a retrain may run
        fill_bank(bank, 10, seed=seed)
        trainer.notify_labelled(40)
        assert sum(t.name == "memento-retrain" for t in threading.enumerate()) <= 1
    trainer.wait_idle(timeout=120)
    assert bank.labelled_count() == (30 + 70) * 4
    assert len(bank.training_set()) == 400
    assert 1 <= len(runs) <= 7
    assert trainer.status()["labels_waiting"] < 40  # every due retrain ran


def test_crash_in_training_keeps_the_active_version(
    bank: InMemoryBank, tmp_path: Path, fill_bank: FillBank, fast_config: TrainConfig
) -> None:
    trainer = OnlineTrainer(bank, tmp_path, retrain_every=1, train_config=fast_config)
    fill_bank(bank, 100)
    trainer.notify_labelled(1)
    trainer.wait_idle(timeout=60)
    active = trainer.status()["active_version"]
    assert active is not None

    def broken(namespace: str | None = None) -> None:
        raise RuntimeError("disk on fire")

    bank.training_set = broken  # type: ignore[method-assign]
    trainer.notify_labelled(1)
    trainer.wait_idle(timeout=60)
    status = trainer.status()
    assert "disk on fire" in status["last_run"]["reason"]
    assert status["active_version"] == active and trainer.scorer() is not None


def test_split_is_by_request() -> None:
    rng = np.random.default_rng(0)
    rids = [f"q{rng.integers(0, 300)}" for _ in range(3000)]
    mask = held_out_mask(rids, 0.2)
    held = {r for r, m in zip(rids, mask, strict=True) if m}
    kept = {r for r, m in zip(rids, mask, strict=True) if not m}
    assert held and kept and not held & kept
    assert 0.1 < len(held) / len(set(rids)) < 0.3
    assert np.array_equal(
        mask, held_out_mask(list(reversed(rids)), 0.2)[::-1]
    )  # stable, order-free


def test_bank_training_set_is_adopted(bank: InMemoryBank, fill_bank: FillBank) -> None:
    fill_bank(bank, 5)
    data = as_training_set(bank.training_set())
    assert data.query_vecs.shape == (20, bank.dim) and data.case_stats.shape == (20, 3)
    assert data.take(np.array([True] * 4 + [False] * 16)).request_ids == [data.request_ids[0]] * 4
