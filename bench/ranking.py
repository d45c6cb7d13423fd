"""What learning costs a retrieval, and what a retrain costs, on a bank with a long history.

    python bench/ranking.py [--cases 10000] [--requests 3000] [--repeats 200]

A real SQLite case bank in a temporary directory holds `--cases` cases (synthetic unit vectors:
timings do not depend on content) and `--requests` logged requests of k = 4 with their outcomes,
so every candidate of a query has a history to read. Per query, the 50 nearest cases are ranked
three ways, all in this process:

- similarity: `MEMENTO_RANKING=similarity`, the baseline (what other memory servers do);
- learned: the default path (retriever.online): read the history of each candidate relevant
  enough to be shown (kept in process once read), weigh it by query closeness and by the chance
  that nothing changed since (contract.since_change), Thompson-sample the top 4 and estimate
  propensities from policy.PROPENSITY_DRAWS draws;
- learned + prior: the same with a trained prior model's numpy forward over the candidates worth
  weighing (those relevant enough to be shown, policy.worth_weighing).

Before that, one retrain of the prior on the bank, run as the server runs it after every 50
labels (`python -m retriever.job`, niced, one thread): training, off-policy valuation,
checkpoint; its wall time includes starting Python and importing torch. Prints medians and JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from memento_mcp.casebank import CaseBank, Impression, NewCase
from memento_mcp.memory import Memory
from memento_mcp.retrieval.encoder import ENCODER_NAME
from memento_mcp.settings import Settings
from retriever.contract import PriorModel
from retriever.online import OnlineTrainer
from retriever.scorer import load_model

K = 4


class NoEncoder:
    """Ranking never encodes; the bank's vectors are given."""

    name = ENCODER_NAME
    dimensions = 384

    def encode(self, texts: list[str]) -> np.ndarray:
        raise AssertionError("the ranking bench does not encode")

    def encode_one(self, text: str) -> np.ndarray:
        raise AssertionError("the ranking bench does not encode")


class Serving(OnlineTrainer):
    """The server's learner, never retraining, serving `model` if given: ranking's cost alone."""

    def __init__(self, bank: CaseBank, home: Path, model: PriorModel | None = None) -> None:
        super().__init__(bank, home / "retriever", retrain_every=10**9)
        self._model = model

    def model(self, namespace: str) -> PriorModel | None:
        return self._model


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.normal(size=(n, 384)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def fill(bank: CaseBank, cases: int, requests: int, rng: np.random.Generator) -> np.ndarray:
    vectors = unit(rng, cases)
    plans = unit(rng, cases)
    for start in range(0, cases, 1000):
        batch = vectors[start : start + 1000]
        added = bank.add_cases(
            [
                (NewCase("default", f"task {start + i}", f"plan {start + i}", reward=1.0), v)
                for i, v in enumerate(batch)
            ]
        )
        bank.add_plan_vectors(
            {case_id: plans[start + i] for i, (case_id, _) in enumerate(added)}
        )
    for r in range(requests):
        near = rng.integers(0, cases)
        query = vectors[near] + 0.3 * unit(rng, 1)[0]
        query /= np.linalg.norm(query)
        shown = [int(c) + 1 for c in np.argsort(-(vectors @ query))[:K]]
        bank.log_request(
            f"r{r}",
            "default",
            "q",
            query,
            "evidence",
            [Impression(c, rank, 0.5, 0.5, 0.5) for rank, c in enumerate(shown, start=1)],
        )
        bank.record_outcome(float(rng.random() < 0.5), f"r{r}", None, [shown[0]])
    return vectors


def median_ms(seconds: list[float]) -> float:
    return round(1000 * statistics.median(seconds), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=3_000)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    home = Path(tempfile.mkdtemp(prefix="memento-ranking-"))
    bank = CaseBank(home / "memento.db")
    t0 = time.perf_counter()
    vectors = fill(bank, args.cases, args.requests, rng)
    print(f"filled {args.cases} cases, {args.requests} labelled requests in {time.perf_counter() - t0:.0f} s")

    # As the server does it: a niced subprocess, so that this process never imports torch.
    t0 = time.perf_counter()
    job = subprocess.run(
        [sys.executable, "-m", "retriever.job", "--db", str(home / "memento.db"),
         "--namespace", "default", "--checkpoint-dir", str(home / "retriever")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    retrain_s = time.perf_counter() - t0
    run = json.loads(job.stdout.strip().splitlines()[-1])
    version = run["version"]
    model = load_model(home / "retriever" / f"{version}.npz", version) if version else None

    results: dict[str, list[float]] = {"similarity": [], "learned": [], "learned + prior": []}
    modes = {
        "similarity": Memory(bank, Settings(home=home, ranking="similarity"), NoEncoder()),
        "learned": Memory(bank, Settings(home=home), NoEncoder(), Serving(bank, home)),
    }
    if model is not None:
        modes["learned + prior"] = Memory(
            bank, Settings(home=home), NoEncoder(), Serving(bank, home, model)
        )
    for _ in range(args.repeats):
        query = vectors[rng.integers(0, args.cases)] + 0.3 * unit(rng, 1)[0]
        query /= np.linalg.norm(query)
        ids = [int(i) for i in modes["learned"].index.search("default", query, 50)[0]]
        case_vecs = bank.case_vectors(ids)
        closeness = np.clip(case_vecs @ query, 0, 1)
        for name, memory in modes.items():
            t0 = time.perf_counter()
            memory._rank("default", ids, query, case_vecs, closeness, K)
            results[name].append(time.perf_counter() - t0)
    report = {
        "cases": args.cases,
        "labelled_requests": args.requests,
        "rank_50_candidates_ms": {k: median_ms(v) for k, v in results.items() if v},
        "retrain_s": round(retrain_s, 1),
        "retrain": {k: run.get(k) for k in ("version", "promoted", "reason")},
    }
    base = report["rank_50_candidates_ms"]["similarity"]
    for name, ms in report["rank_50_candidates_ms"].items():
        print(f"{name:>16}: {ms:7.3f} ms per ranking (+{ms - base:.3f} ms vs similarity)")
    print(f"retrain on {args.requests} labelled requests: {retrain_s:.1f} s")
    print(json.dumps(report, indent=1))
    bank.close()


if __name__ == "__main__":
    main()
