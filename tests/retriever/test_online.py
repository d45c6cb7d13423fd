"""The background loop: never blocks, one run at a time, loses no label, namespaces apart."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from retriever import job
from retriever.bank import InMemoryBank
from retriever.data import held_out_mask
from retriever.online import OnlineTrainer
from retriever.train import TrainConfig

FillBank = Callable[..., None]
CONFIG = TrainConfig(batch_size=128, epochs=60)


def test_retrains_in_background_and_promotes(
    bank: InMemoryBank, tmp_path: Path, fill_bank: FillBank
) -> None:
    trainer = OnlineTrainer(bank, tmp_path, retrain_every=100, train_config=CONFIG)
    fill_bank(bank, 300, n_cases=40)
    trainer.notify_labelled("default", 99)
    status = trainer.status("default")
    assert not status["training"] and status["labels_notified"] == 99
    assert status["labels_waiting"] == 1200  # no version has seen any label yet
    t0 = time.perf_counter()
    trainer.notify_labelled("default", 1101)
    assert time.perf_counter() - t0 < 0.5  # the caller does not wait for training (seconds)
    trainer.wait_idle(timeout=60)
    status = trainer.status("default")
    assert status["last_run"]["promoted"], status["last_run"]
    assert status["model"] == status["active_version"] and status["fallback"] is None
    assert status["value"] > status["incumbent_value"] and status["ci"][0] > 0
    assert status["labels_waiting"] == 0 and status["versions"] == 1
    assert trainer.status()["namespaces"]["default"]["model"] == status["model"]


def test_labels_arriving_during_training_are_all_kept(
    bank: InMemoryBank, tmp_path: Path, fill_bank: FillBank, monkeypatch: pytest.MonkeyPatch
) -> None:
    trainer = OnlineTrainer(bank, tmp_path, retrain_every=40, keep_checkpoints=2, rest=0,
                            train_config=TrainConfig(batch_size=64, epochs=5))  # fmt: skip
    running, overlap = [0], []
    original = job.run

    def counting_run(*args: Any, **kwargs: Any) -> dict[str, Any]:
        running[0] += 1
        overlap.append(running[0])
        try:
            return original(*args, **kwargs)
        finally:
            running[0] -= 1

    monkeypatch.setattr(job, "run", counting_run)
    fill_bank(bank, 30, seed=0)
    for seed in range(1, 8):  # 7 batches of 40 labels, each notified while a run may be going
        fill_bank(bank, 10, seed=seed)
        trainer.notify_labelled("default", 40)
        assert sum(t.name == "memento-retrain" for t in threading.enumerate()) <= 1
    trainer.wait_idle(timeout=120)
    assert bank.labelled_count("default") == (30 + 70) * 4
    assert len(bank.training_set("default")) == 400
    assert 1 <= len(overlap) <= 7 and max(overlap) == 1  # never two runs at once
    assert trainer.status("default")["labels_notified"] < 40  # every due run ran
    assert len([v for v in bank.retriever_versions("default") if not v["active"]]) <= 2


def test_namespaces_learn_apart(bank: InMemoryBank, tmp_path: Path, fill_bank: FillBank) -> None:
    trainer = OnlineTrainer(bank, tmp_path, retrain_every=10, train_config=CONFIG)
    fill_bank(bank, 300, n_cases=40, namespace="a")
    fill_bank(bank, 20, n_cases=10, namespace="b", seed=1)
    trainer.notify_labelled("a", 1200)
    trainer.wait_idle(timeout=60)
    assert trainer.model("a") is not None and trainer.model("b") is None
    assert {v["namespace"] for v in bank.retriever_versions()} == {"a"}
    assert trainer.status("b")["labels_waiting"] == 80
    trainer.notify_labelled("b", 80)
    trainer.wait_idle(timeout=60)
    assert trainer.model("a").version == trainer.status("a")["active_version"]  # type: ignore[union-attr]
    assert all(v["metrics"]["n_labelled"] == 80 for v in bank.retriever_versions("b"))


def test_crash_in_training_keeps_the_active_version(
    bank: InMemoryBank, tmp_path: Path, fill_bank: FillBank
) -> None:
    trainer = OnlineTrainer(bank, tmp_path, retrain_every=1, rest=0, train_config=CONFIG)
    fill_bank(bank, 300, n_cases=40)
    trainer.notify_labelled("default", 1)
    trainer.wait_idle(timeout=60)
    active = trainer.status("default")["active_version"]
    assert active is not None

    def broken(namespace: str | None = None) -> None:
        raise RuntimeError("disk on fire")

    bank.training_set = broken  # type: ignore[method-assign, assignment]
    trainer.notify_labelled("default", 1)
    trainer.wait_idle(timeout=60)
    status = trainer.status("default")
    assert "disk on fire" in status["last_run"]["reason"]
    assert status["active_version"] == active and trainer.model("default") is not None


def test_a_due_run_waits_out_the_rest_after_the_last_one_then_starts_by_itself(
    bank: InMemoryBank, tmp_path: Path, fill_bank: FillBank, monkeypatch: pytest.MonkeyPatch
) -> None:
    """However fast labels arrive, training keeps to 1 / (1 + rest) of the time."""
    trainer = OnlineTrainer(bank, tmp_path, retrain_every=10, rest=3.0,
                            train_config=TrainConfig(batch_size=64, epochs=5))  # fmt: skip
    spans: list[tuple[float, float]] = []
    original = job.run

    def timed_run(*args: Any, **kwargs: Any) -> dict[str, Any]:
        start = time.monotonic()
        try:
            return original(*args, **kwargs)
        finally:
            spans.append((start, time.monotonic()))

    monkeypatch.setattr(job, "run", timed_run)
    fill_bank(bank, 60, seed=0)
    trainer.notify_labelled("default", 10)
    trainer.wait_idle(timeout=60)
    trainer.notify_labelled("default", 10)  # due at once, but the first run has just ended
    assert not trainer.status("default")["training"] and len(spans) == 1
    deadline = time.monotonic() + 60
    while len(spans) < 2 and time.monotonic() < deadline:  # no further label arrives
        time.sleep(0.05)
    (start1, end1), (start2, _) = spans
    assert start2 - end1 >= 3.0 * (end1 - start1) * 0.99
    assert trainer.status("default")["labels_notified"] == 0


def test_split_is_by_request() -> None:
    rng = np.random.default_rng(0)
    rids = [f"q{rng.integers(0, 300)}" for _ in range(3000)]
    mask = held_out_mask(rids, 0.2)
    held = {r for r, m in zip(rids, mask, strict=True) if m}
    kept = {r for r, m in zip(rids, mask, strict=True) if not m}
    assert held and kept and not held & kept
    assert 0.1 < len(held) / len(set(rids)) < 0.3
    assert np.array_equal(mask, held_out_mask(list(reversed(rids)), 0.2)[::-1])  # order-free
