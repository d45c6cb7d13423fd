"""Q-scorer speed: scoring 50 candidates, and a head retrain on 10k labelled impressions.

    python bench/scorer.py [--repeats 200] [--rows 10000]

Baselines run in the same process: cosine over the same 50 candidates (what retrieval does with
no trained head), and the torch forward of the same head (what the numpy serving path replaces).
The retrain is the online path end to end: query split, head training, held-out evaluation.
Synthetic unit vectors; timings do not depend on their content. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from retriever.bank import InMemoryBank
from retriever.data import TrainingSet
from retriever.model import QScorer, ScorerConfig
from retriever.online import retrain
from retriever.scorer import HeadScorer


def median_ms(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    for _ in range(10):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def unit(rng: np.random.Generator, n: int, dim: int = 384) -> np.ndarray:
    v = rng.normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def synthetic_impressions(n: int, rng: np.random.Generator) -> TrainingSet:
    """n labelled impressions, 4 per request, over 2,000 cases; reward depends on the case."""
    cases = unit(rng, 2000)
    quality = rng.random(2000)
    case_ids = rng.integers(0, 2000, size=n)
    queries = unit(rng, n // 4 + 1)
    rewards = (rng.random(n) < quality[case_ids]).astype(np.float32)
    stats = np.stack(
        [
            np.ones(n),
            np.clip(quality[case_ids] + rng.normal(0, 0.2, n), 0, 1),
            np.log1p(rng.integers(0, 50, n)),
        ],
        1,
    )
    return TrainingSet(
        impression_ids=np.arange(n, dtype=np.int64),
        request_ids=[f"r{i // 4}" for i in range(n)],
        query_vecs=queries[np.arange(n) // 4],
        case_vecs=cases[case_ids],
        case_stats=stats.astype(np.float32),
        rewards=rewards,
        propensities=np.full(n, 0.8, np.float32),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)

    model = QScorer(ScorerConfig()).eval()
    scorer = HeadScorer(model, "bench")
    q, c, s = unit(rng, 1)[0], unit(rng, 50), rng.random((50, 3)).astype(np.float32)
    qt, ct, st = map(torch.from_numpy, (q, c, s))

    def torch_forward() -> None:
        with torch.inference_mode():
            torch.sigmoid(model(qt, ct, st))

    result = {
        "torch_threads": torch.get_num_threads(),
        "score_50_ms": median_ms(lambda: scorer.score(q, c, s), args.repeats),
        "baseline_cosine_50_ms": median_ms(lambda: c @ q, args.repeats),
        "baseline_torch_forward_50_ms": median_ms(torch_forward, args.repeats),
    }

    data = synthetic_impressions(args.rows, rng)
    with tempfile.TemporaryDirectory() as tmp:
        bank = InMemoryBank()
        t0 = time.perf_counter()
        run = retrain(bank, Path(tmp), data)
        result["retrain_rows"] = args.rows
        result["retrain_s"] = time.perf_counter() - t0
        result["retrain_train_s"] = run["metrics"]["train_seconds"]
        result["retrain_steps"] = run["metrics"]["steps"]
        result["retrain_heldout_auc"] = run["metrics"]["auc"]
        result["retrain_baseline_cosine_auc"] = run["metrics"]["baseline_cosine_auc"]
    print(
        json.dumps(
            {k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}, indent=1
        )
    )


if __name__ == "__main__":
    main()
