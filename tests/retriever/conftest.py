"""Synthetic labelled impressions: no encoder, so these tests run in seconds."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from retriever.bank import InMemoryBank
from retriever.train import TrainConfig

DIM = 16


def unit(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    v = rng.normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def fill_bank(bank: InMemoryBank, n_requests: int, seed: int = 0, n_cases: int = 12) -> None:
    """Each request shows 4 cases; a case helps when its first coordinate is positive.

    Cosine knows nothing about that rule, so a learned head must beat it.
    """
    rng = np.random.default_rng(seed)
    if not bank.case_vectors().size:
        for vec in unit(rng, n_cases):
            bank.add_case(vec)
    cases = bank.case_vectors()
    good = cases[:, 0] > 0
    for r in range(n_requests):
        rid = f"s{seed}-r{r}"
        q = unit(rng, 1)[0]
        shown = rng.choice(len(cases), size=4, replace=False)
        for cid in shown:
            bank.log_impression(rid, int(cid), q, propensity=0.5)
        for cid in shown:
            reward = float(rng.random() < (0.9 if good[cid] else 0.1))
            bank.label(rid, reward, [int(cid)])


@pytest.fixture(name="fill_bank")
def fill_bank_fixture() -> Callable[..., None]:
    return fill_bank


@pytest.fixture
def bank() -> InMemoryBank:
    return InMemoryBank(dim=DIM)


@pytest.fixture
def fast_config() -> TrainConfig:
    return TrainConfig(batch_size=128, epochs=20)
