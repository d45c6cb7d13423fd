"""Synthetic banks: no encoder, so these tests run in seconds.

Every case is on topic for every query (task vectors cluster around one direction), so ranking
among them is the prior's and the evidence's job, and whether a case helps depends on its PLAN
only (`good_plan`): cosine knows nothing about that rule, so a model must learn it from plans.
"""

from __future__ import annotations

import numpy as np

from retriever.bank import InMemoryBank

DIM = 16
TOPIC = np.eye(DIM, dtype=np.float32)[1]  # the direction every task and query lies near


def unit(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    v = rng.normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def on_topic(rng: np.random.Generator, n: int, spread: float = 0.15) -> np.ndarray:
    """(n, DIM) unit vectors close to TOPIC: cosines with each other around 0.9."""
    v = TOPIC + spread * rng.normal(size=(n, DIM)).astype(np.float32)
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def good_plan(plans: np.ndarray) -> np.ndarray:
    return plans[:, 0] > 0


def add_cases(
    bank: InMemoryBank, n: int, rng: np.random.Generator, namespace: str = "default"
) -> list[int]:
    return [
        bank.add_case(task, plan, namespace)
        for task, plan in zip(on_topic(rng, n), unit(rng, n), strict=True)
    ]


def fill_bank(
    bank: InMemoryBank,
    n_requests: int,
    seed: int = 0,
    n_cases: int = 12,
    namespace: str = "default",
    signal: bool = True,
    k: int = 4,
) -> None:
    """Requests that each show k of the namespace's cases uniformly at random (propensity k/N),
    each case labelled on its own: 0.9 success for a good plan, 0.1 for a bad one (signal), or
    0.5 for every case (no signal)."""
    rng = np.random.default_rng(seed)
    ids, _, plans = bank.namespace_vectors(namespace)
    if not len(ids):
        add_cases(bank, n_cases, rng, namespace)
        ids, _, plans = bank.namespace_vectors(namespace)
    p_help = np.where(good_plan(plans), 0.9, 0.1) if signal else np.full(len(ids), 0.5)
    for r in range(n_requests):
        rid = f"{namespace}-s{seed}-r{r}"
        q = on_topic(rng, 1)[0]
        shown = rng.choice(len(ids), size=k, replace=False)
        for i in shown:
            bank.log_impression(rid, int(ids[i]), q, k / len(ids), namespace)
        for i in shown:
            bank.label(rid, float(rng.random() < p_help[i]), [int(ids[i])])
