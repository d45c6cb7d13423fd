"""Promotion by policy value: SNIPS is right on known logs; noise and worse models stay out."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from retriever.bank import InMemoryBank
from retriever.contract import TrainingSet
from retriever.job import retrain
from retriever.ope import compare, logged_requests, snips, snips_terms
from retriever.train import TrainConfig

FillBank = Callable[..., None]
CONFIG = TrainConfig(batch_size=128, epochs=60)


class FixedPrior:
    """A policy that ranks by a fixed per-case prior (a stand-in for a trained model)."""

    def __init__(self, prior: np.ndarray, version: str = "fixed") -> None:
        self.prior, self.version = prior, version

    def predict(self, query_vec: np.ndarray, case_vecs: np.ndarray, plan_vecs: np.ndarray):  # type: ignore[no-untyped-def]
        return self.prior[plan_vecs[:, 0].astype(int)]  # plan_vecs[:, 0] holds the case index


def test_snips_matches_a_known_policy_value() -> None:
    """Uniform logging of k=2 of 6 equally similar cases; the target shows its 2 favourites."""
    rng = np.random.default_rng(0)
    n_cases, k, n_requests = 6, 2, 8_000
    p_help = np.array([0.9, 0.2, 0.6, 0.1, 0.4, 0.7])
    prior = np.array([0.1, 0.2, 0.9, 0.3, 0.4, 0.8])  # favours cases 2 and 5
    truth = p_help[[2, 5]].mean()  # the target's exact value: 0.65
    tasks = np.tile(np.eye(4, dtype=np.float32)[0], (n_cases, 1))  # all equally similar
    plans = np.zeros((n_cases, 4), np.float32)
    plans[:, 0] = np.arange(n_cases)
    vectors = (np.arange(n_cases, dtype=np.int64), tasks, plans)

    shown = np.stack([rng.choice(n_cases, k, replace=False) for _ in range(n_requests)])
    rows = shown.ravel()
    n = len(rows)
    data = TrainingSet(
        impression_ids=np.arange(n, dtype=np.int64),
        request_ids=[f"r{i // k}" for i in range(n)],
        case_ids=rows.astype(np.int64),
        query_vecs=np.tile(tasks[0], (n, 1)),
        case_vecs=tasks[rows],
        plan_vecs=plans[rows],
        rewards=(rng.random(n) < p_help[rows]).astype(np.float32),
        credits=np.ones(n, np.float32),
        propensities=np.full(n, k / n_cases, np.float32),
    )
    num, den = snips_terms(data, logged_requests(data, vectors), vectors, FixedPrior(prior))
    estimate = snips(num, den)
    assert estimate is not None and abs(estimate - truth) < 0.02  # about 3 standard errors
    # The similarity order (no prior) breaks the all-equal tie by case order: cases 0 and 1.
    num, den = snips_terms(data, logged_requests(data, vectors), vectors, None)
    assert abs(snips(num, den) - p_help[[0, 1]].mean()) < 0.02  # type: ignore[operator]

    # On 1,000 requests the difference (0.65 - 0.55) is inside the interval, which excludes 0.
    result = compare(FixedPrior(prior), None, data.take(np.arange(2000)), vectors)
    lo, hi = result["ci"]
    assert result["promote"] and 0 < lo < 0.10 < hi
    backwards = compare(None, FixedPrior(prior), data.take(np.arange(2000)), vectors)  # type: ignore[arg-type]
    assert not backwards["promote"] and backwards["ci"][1] < 0


@pytest.mark.parametrize(
    ("seed", "config"),
    [(0, TrainConfig()), (6, TrainConfig()), (0, TrainConfig(l2=0.0, epochs=100, lr=3e-3))],
    ids=["defaults", "defaults-closest-call", "overfitting"],
)
def test_a_model_trained_on_noise_is_not_promoted(
    bank: InMemoryBank, tmp_path: Path, fill_bank: FillBank, seed: int, config: TrainConfig
) -> None:
    """Rewards independent of the case: whatever the head makes of them, similarity keeps serving.

    Seed 6 is the closest call of 10 seeds with the defaults (gain +0.007, interval [0, +0.03])."""
    fill_bank(bank, 300, n_cases=40, signal=False, seed=seed)
    result = retrain(bank, "default", tmp_path, train_config=config)
    assert result["version"] is not None and not result["promoted"], result["reason"]
    assert result["metrics"]["ci"][0] <= 0 or result["metrics"]["diff"] < 0.02
    assert bank.active_retriever("default") is None


def test_a_better_model_is_promoted_and_a_worse_one_refused(
    bank: InMemoryBank, tmp_path: Path, fill_bank: FillBank
) -> None:
    fill_bank(bank, 300, n_cases=40)
    good = retrain(bank, "default", tmp_path, train_config=CONFIG)
    assert good["promoted"], good["reason"]
    metrics = good["metrics"]
    assert metrics["value"] > metrics["incumbent_value"] + 0.2  # 0.9-plans over a random mix
    assert metrics["incumbent"] == "similarity" and metrics["ci"][0] > 0
    # A crippled candidate (one tiny step: about the similarity order) against the good incumbent.
    crippled = TrainConfig(max_steps=1, min_steps=1, lr=1e-6, wide_lr=1e-6)
    worse = retrain(bank, "default", tmp_path, train_config=crippled)
    assert not worse["promoted"], worse["reason"]
    assert worse["metrics"]["incumbent"] == good["version"] and worse["metrics"]["diff"] < 0
    assert bank.active_retriever("default")["version"] == good["version"]  # type: ignore[index]
