"""Held-out AUC on Memento's retriever pairs: the prior head against what a query alone predicts.

    python bench/pairs_auc.py [--pairs PATH] [--splits 10]

Memento's `training_data.jsonl` gives each query 8 cases, all labelled with the query's outcome,
so a row's AUC measures how well a model predicts whether a query will be solved, not which of
its cases helps. Per split (20 % of queries held out, `retriever.data.held_out_mask` with seeds
0..N-1), on the same rows:

- head: the prior head as `memento-mcp retriever eval` trains it (q, task, plan vectors, and its
  query kernel over the training requests, retriever.model.kernel_logit);
- cosine: the query-task cosine (Memento's non-parametric retriever);
- query kernel: the head's kernel term alone, no model: each held-out query scored by the
  outcomes of the training queries near it (Nadaraya-Watson over their cosines, at the head's
  temperature).

Prints the AUC of the first split and mean / min over splits, and JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from retriever.contract import TrainingSet
from retriever.data import load_pairs
from retriever.evaluate import auc, cosine_scores, predict
from retriever.jobs import cached_encoder
from retriever.model import HeadConfig
from retriever.scorer import kernel_logit
from retriever.train import request_memory, train_head

PAIRS = Path(__file__).parent.parent.parent / "shared/anchors/memento-data/training_data.jsonl"


def query_kernel(train: TrainingSet, test: TrainingSet) -> np.ndarray:
    """Each test row scored by the head's kernel term alone, over the training requests."""
    config = HeadConfig()
    memory_q, memory_r, _ = request_memory(train, config.memory_size)
    return kernel_logit(test.query_vecs @ memory_q.T, memory_r, config.kernel_temperature)


def one_split(pairs: Path, seed: int, encode: object) -> dict[str, float | None]:
    data, held = load_pairs(pairs, encode, 0.2, seed)  # type: ignore[arg-type]
    train, test = data.take(~held), data.take(held)
    return {
        "head": auc(test.rewards, predict(train_head(train)[0], test)),
        "cosine": auc(test.rewards, cosine_scores(test)),
        "query kernel": auc(test.rewards, query_kernel(train, test)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=Path, default=PAIRS)
    parser.add_argument("--splits", type=int, default=10)
    args = parser.parse_args()
    encode = cached_encoder(Path(__file__).parent / "out" / "vectors")
    started = time.perf_counter()
    runs = [one_split(args.pairs, seed, encode) for seed in range(args.splits)]
    summary = {
        name: {
            "split0": runs[0][name],
            "mean": float(np.mean([r[name] for r in runs])),
            "min": float(np.min([r[name] for r in runs])),
        }
        for name in runs[0]
    }
    print(f"| scores | AUC, split 0 | mean over {args.splits} splits | worst split |")
    print("|---|---|---|---|")
    for name, m in summary.items():
        print(f"| {name} | {m['split0']:.3f} | {m['mean']:.3f} | {m['min']:.3f} |")
    print(json.dumps({"splits": args.splits, "seconds": round(time.perf_counter() - started),
                      "auc": summary}))  # fmt: skip


if __name__ == "__main__":
    main()
