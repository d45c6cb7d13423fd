"""Fixtures over the synthetic banks of retriever_synthetic."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from retriever_synthetic import DIM, fill_bank

from retriever.bank import InMemoryBank
from retriever.train import TrainConfig


@pytest.fixture(name="fill_bank")
def fill_bank_fixture() -> Callable[..., None]:
    return fill_bank


@pytest.fixture
def bank() -> InMemoryBank:
    return InMemoryBank(dim=DIM)


@pytest.fixture
def fast_config() -> TrainConfig:
    return TrainConfig(batch_size=128, epochs=20)
