"""Case-bank speed: retrieve_cases, record_outcome and bulk import, against the original Memento way.

    python bench/retrieval.py                      # 10k and 100k cases
    python bench/retrieval.py --sizes 10000 --repeats 50

Banks are filled with the starter bank's 1,278 tasks, each repeated with a variant suffix; their
vectors are the real MiniLM embedding of the task plus a little noise (encoding 100k texts would
take minutes and is measured separately as bulk import). Queries are real encoder calls. The
baseline is what the original project does per query: re-encode every case of its 1,278-case
bank, then take cosine top-k. Prints medians; writes bench/out/retrieval.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from memento_mcp.casebank import NewCase
from memento_mcp.cli import STARTER_BANK
from memento_mcp.memory import Memory, open_memory
from memento_mcp.retrieval.encoder import shared_encoder
from memento_mcp.settings import Settings

QUERIES = [
    "What sport does Carlos Valderrama play?",
    "What is the capital of Columbia County, New York?",
    "Who directed the film The Third Man?",
    "In what country is Lake Titicaca?",
    "What genre is the band Radiohead?",
    "Who was the father of Alexander the Great?",
]


def median_ms(run: Callable[[int], object], repeats: int) -> float:
    run(0)  # warm-up
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        run(i)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def starter_tasks() -> list[str]:
    return [json.loads(line)["case"] for line in STARTER_BANK.read_text().splitlines()]


def fill(memory: Memory, size: int, tasks: list[str], vectors: np.ndarray) -> float:
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for offset in range(0, size, 5000):
        batch = []
        for i in range(offset, min(size, offset + 5000)):
            noisy = vectors[i % len(tasks)] + rng.normal(0, 0.05, vectors.shape[1])
            batch.append((
                NewCase("default", f"{tasks[i % len(tasks)]} (variant {i})", f"plan {i}",
                        reward=float(i % 3 != 0), source="bench"),
                (noisy / np.linalg.norm(noisy)).astype(np.float32),
            ))
        memory.bank.add_cases(batch)
    return time.perf_counter() - start


def original_memento(tasks: list[str], query: str, k: int = 4) -> list[int]:
    """Memento's np_memory retrieval: every case is re-encoded for every query."""
    encoder = shared_encoder()
    cases = encoder.encode(tasks)
    sims = cases @ encoder.encode_one(query)
    return np.argsort(-sims)[:k].tolist()


async def over_stdio(home: Path, repeats: int) -> float:
    from fastmcp import Client
    from fastmcp.client.transports import StdioTransport

    env = {**os.environ, "MEMENTO_HOME": str(home), "FASTMCP_SHOW_SERVER_BANNER": "false",
           "FASTMCP_CHECK_FOR_UPDATES": "off", "FASTMCP_LOG_LEVEL": "ERROR"}
    transport = StdioTransport(sys.executable, ["-m", "memento_mcp", "serve"], env=env)
    async with Client(transport, timeout=300) as client:
        await client.call_tool_mcp("retrieve_cases", {"query": "warm up"})
        times = []
        for i in range(repeats):
            start = time.perf_counter()
            await client.call_tool_mcp("retrieve_cases", {"query": QUERIES[i % len(QUERIES)]})
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()

    encoder = shared_encoder()
    tasks = starter_tasks()
    results: dict[str, object] = {"machine": f"{os.cpu_count()} cpus", "sizes": {}}

    encode_ms = median_ms(lambda i: encoder.encode_one(QUERIES[i % len(QUERIES)]), args.repeats)
    baseline_ms = median_ms(lambda i: original_memento(tasks, QUERIES[i % len(QUERIES)]), 5)
    print(f"encode one query: {encode_ms:.1f} ms")
    print(f"original Memento (re-embed {len(tasks)} cases per query): {baseline_ms:.0f} ms")

    with tempfile.TemporaryDirectory() as tmp:
        memory = open_memory(Settings(home=Path(tmp) / "import"))
        start = time.perf_counter()
        report = memory.import_file(STARTER_BANK)
        rate = report.added / (time.perf_counter() - start)
        print(f"bulk import: {rate:.0f} cases/s ({report.added} cases, encoder included)")
        results.update(encode_query_ms=encode_ms, original_memento_ms=baseline_ms,
                       import_cases_per_s=rate)

        vectors = encoder.encode(tasks)
        for size in args.sizes:
            home = Path(tmp) / f"bank{size}"
            memory = open_memory(Settings(home=home))
            fill_s = fill(memory, size, tasks, vectors)
            memory.retrieve("load the index")
            retrieve = median_ms(lambda i: memory.retrieve(QUERIES[i % len(QUERIES)]), args.repeats)
            record = median_ms(
                lambda i: memory.record_outcome(
                    task=f"bench task {size} {i} {time.time()}", plan="p", answer="a", reward=1.0
                ),
                args.repeats,
            )
            memory.bank.close()
            stdio = asyncio.run(over_stdio(home, args.repeats))
            row = {"fill_s": fill_s, "retrieve_ms": retrieve, "retrieve_stdio_ms": stdio,
                   "record_outcome_ms": record, "vs_original": baseline_ms / retrieve}
            results["sizes"][str(size)] = row  # type: ignore[index]
            print(f"{size:>9,} cases (filled in {fill_s:.0f} s): retrieve {retrieve:.1f} ms"
                  f" in-process, {stdio:.1f} ms over stdio; record_outcome {record:.1f} ms;"
                  f" {baseline_ms / retrieve:.0f}x faster than the original on 1,278 cases")

    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / "retrieval.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
