"""Synthetic banks for the benchmarks: real MiniLM vectors of the starter tasks, mixed and perturbed.

Encoding 1M texts would take hours on 2 cores, so large banks get precomputed vectors: each is
the real embedding of one starter task plus 0.35 of another's plus Gaussian noise (sigma 0.03
per dimension), renormalised. That keeps the bank clustered like real text (1,278 topics with
overlaps) instead of uniform noise, which no index sees in practice. Queries are real encoder
calls on the starter tasks reworded, so they sit near, not on, stored vectors.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from memento_mcp.retrieval.encoder import shared_encoder

STARTER_BANK = Path(__file__).parents[1] / "memento_mcp" / "data" / "memento_memory.jsonl"
CACHE = Path(__file__).parent / "out" / "starter_vectors.npy"


def starter_tasks() -> list[str]:
    return [json.loads(line)["case"] for line in STARTER_BANK.read_text().splitlines()]


def starter_vectors() -> np.ndarray:
    """(1278, 384) real MiniLM vectors of the starter tasks (cached in bench/out)."""
    if CACHE.exists():
        return np.load(CACHE)
    vectors = shared_encoder().encode(starter_tasks())
    CACHE.parent.mkdir(exist_ok=True)
    np.save(CACHE, vectors)
    return vectors


def query_texts(n: int = 100) -> list[str]:
    tasks = starter_tasks()
    rng = np.random.default_rng(1)
    return [f"Please help: {tasks[i]}" for i in rng.choice(len(tasks), n, replace=False)]


def synthetic_chunks(
    base: np.ndarray, n: int, seed: int = 0, chunk: int = 100_000
) -> Iterator[np.ndarray]:
    """n unit vectors in (<= chunk, 384) float32 pieces; the same n and seed give the same bank."""
    rng = np.random.default_rng(seed)
    for start in range(0, n, chunk):
        size = min(chunk, n - start)
        a = base[np.arange(start, start + size) % len(base)]
        b = base[rng.integers(0, len(base), size)]
        v = a + 0.35 * b + rng.normal(0, 0.03, (size, base.shape[1])).astype(np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        yield v.astype(np.float32)
