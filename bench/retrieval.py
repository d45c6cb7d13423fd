"""Case-bank speed at 10k, 100k and 1M cases: the ANN index beside an exact baseline (issue 10).

    python bench/retrieval.py                          # 10k and 100k
    python bench/retrieval.py --sizes 1000000 --repeats 100 --banks /tmp/banks   # reusable

For each size a fresh bank is bulk-loaded from a cases file with precomputed vectors (see
bench/_synthetic.py: real MiniLM vectors of the starter tasks, mixed and perturbed), which times
the import; the vector index file is then built (timed). With --banks, a bank left there by an
earlier run is reused instead (no import figures then). Then, with real query encodings:
retrieve_cases p50/p99 in-process and over stdio, recall@10 of the dense search against exact
cosine, record_outcome and delete_case p50, the server's spawn -> first result (wall and the
server's own CPU seconds, which stay meaningful on a loaded machine) and its RSS. The same
measurements are repeated with the index off (MEMENTO_ANN_MIN_CASES above the bank size: exact
search); in-process, the two take turns in blocks of 20 calls, after every query has been
encoded once (an encoder's first call at a new text length is slower: start-up, not steady
state). Once per run: `memento-mcp --help` wall time and the import rate with encoding (the
1,278 starter cases). Prints medians; writes bench/out/retrieval.json (merged across runs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as memento_mcp sets it; before numpy loads
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _synthetic import (  # noqa: E402
    STARTER_BANK,
    query_texts,
    starter_tasks,
    starter_vectors,
    synthetic_chunks,
)

from memento_mcp import transfer  # noqa: E402
from memento_mcp.memory import open_memory  # noqa: E402
from memento_mcp.retrieval.encoder import shared_encoder  # noqa: E402
from memento_mcp.settings import Settings  # noqa: E402

OUT = Path(__file__).parent / "out" / "retrieval.json"
EXACT = 10**12  # ann_min_cases above any bank: exact search only
QUIET = {"FASTMCP_SHOW_SERVER_BANNER": "false", "FASTMCP_CHECK_FOR_UPDATES": "off",
         "FASTMCP_LOG_LEVEL": "ERROR"}


def percentiles(times: list[float]) -> dict[str, float]:
    ms = np.array(times) * 1000
    return {"p50_ms": round(float(np.median(ms)), 2), "p99_ms": round(float(np.percentile(ms, 99)), 2)}


def timed(run: Callable[[int], object], repeats: int) -> list[float]:
    run(0)  # warm-up
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        run(i)
        times.append(time.perf_counter() - start)
    return times


def write_cases(path: Path, size: int) -> None:
    tasks = starter_tasks()
    with path.open("w") as handle:
        i = 0
        for chunk in synthetic_chunks(starter_vectors(), size):
            for vector in np.round(chunk.astype(np.float64), 7).tolist():
                handle.write(json.dumps({
                    "task": f"{tasks[i % len(tasks)]} (variant {i})", "plan": f"plan {i}",
                    "answer": "", "reward": float(i % 3 != 0), "embedding": vector,
                }) + "\n")
                i += 1


def exact_top10(size: int, queries: np.ndarray) -> np.ndarray:
    """Exact cosine top-10 case ids (the bank's ids are 1..size in file order)."""
    best_ids = np.zeros((len(queries), 0), dtype=np.int64)
    best_sims = np.zeros((len(queries), 0), dtype=np.float32)
    offset = 0
    for chunk in synthetic_chunks(starter_vectors(), size):
        sims = queries @ chunk.T  # (Q, chunk)
        ids = np.broadcast_to(np.arange(offset + 1, offset + 1 + len(chunk)), sims.shape)
        all_sims = np.concatenate([best_sims, sims], axis=1)
        all_ids = np.concatenate([best_ids, ids], axis=1)
        top = np.argsort(-all_sims, axis=1)[:, :10]
        best_sims = np.take_along_axis(all_sims, top, 1)
        best_ids = np.take_along_axis(all_ids, top, 1)
        offset += len(chunk)
    return best_ids


def server_pid(home: Path) -> int | None:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes()
            env = (entry / "environ").read_bytes()
        except OSError:
            continue
        if b"memento_mcp\0serve" in cmd and f"MEMENTO_HOME={home}\0".encode() in env:
            return int(entry.name)
    return None


def proc_stats(pid: int) -> tuple[float, float]:
    """(RSS in MB, user+system CPU seconds) of a process."""
    rss = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            rss = int(line.split()[1]) / 1024
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return rss, cpu


async def over_stdio(home: Path, queries: list[str], env_extra: dict[str, str]) -> dict[str, Any]:
    from fastmcp import Client
    from fastmcp.client.transports import StdioTransport

    env = {**os.environ, **QUIET, "MEMENTO_HOME": str(home), **env_extra}
    transport = StdioTransport(sys.executable, ["-m", "memento_mcp", "serve"], env=env)
    start = time.perf_counter()
    async with Client(transport, timeout=600) as client:
        await client.call_tool_mcp("retrieve_cases", {"query": queries[0]})
        first = time.perf_counter() - start
        pid = server_pid(home)
        _, first_cpu = proc_stats(pid) if pid else (0.0, 0.0)
        times = []
        for query in queries:
            t = time.perf_counter()
            await client.call_tool_mcp("retrieve_cases", {"query": query})
            times.append(time.perf_counter() - t)
        rss, _ = proc_stats(pid) if pid else (0.0, 0.0)
    return {"spawn_to_first_result_s": round(first, 3), "server_cpu_to_first_result_s": first_cpu,
            "retrieve_stdio": percentiles(times), "server_rss_mb": round(rss)}


def help_wall() -> float:
    exe = Path(sys.executable).parent / "memento-mcp"
    times = []
    for _ in range(5):
        t = time.perf_counter()
        subprocess.run([str(exe), "--help"], capture_output=True, check=True)
        times.append(time.perf_counter() - t)
    return round(statistics.median(times), 3)


def import_with_encoding(tmp: Path) -> float:
    memory = open_memory(Settings(home=tmp / "encode-import"))
    shared_encoder().load()
    start, cpu = time.perf_counter(), time.process_time()
    report = transfer.import_file(memory, STARTER_BANK)
    rate = report.added / (time.perf_counter() - start)
    print(f"  import with encoding: {rate:.0f} cases/s wall,"
          f" {report.added / (time.process_time() - cpu):.0f} per CPU-second", flush=True)
    memory.close()
    return round(rate, 1)


def build_bank(size: int, home: Path) -> dict[str, Any]:
    """Bulk-load `size` synthetic cases with vectors into a fresh bank and build its index file."""
    source = home.parent / f"cases{size}.jsonl"
    t = time.perf_counter()
    write_cases(source, size)
    print(f"  wrote {size:,} cases with vectors in {time.perf_counter() - t:.0f} s", flush=True)

    memory = open_memory(Settings(home=home))
    t = time.perf_counter()
    report = transfer.import_file(memory, source)
    import_s = time.perf_counter() - t
    t = time.perf_counter()
    memory.index.flush()
    index_s = time.perf_counter() - t
    source.unlink()
    memory.close()
    print(f"  imported in {import_s:.0f} s ({report.added / import_s:.0f}/s), index {index_s:.0f} s",
          flush=True)
    return {
        "import_precomputed_cases_per_s": round(report.added / import_s),
        "import_precomputed_s": round(import_s, 1), "index_build_s": round(index_s, 1),
    }


def timed_pair(
    runs: dict[str, Callable[[int], object]], repeats: int, block: int = 20
) -> dict[str, list[float]]:
    """Time several ways of doing the same call, taking turns in blocks of calls, so that a change
    in the machine's load lands on all of them alike. Blocks rather than single calls: an exact
    search of 1M vectors streams 1.5 GB through the caches, which would slow the call after it."""
    for run in runs.values():
        run(0)  # warm-up
    times: dict[str, list[float]] = {name: [] for name in runs}
    for first in range(0, repeats, block):
        for name, run in runs.items():
            for i in range(first, min(first + block, repeats)):
                start = time.perf_counter()
                run(i)
                times[name].append(time.perf_counter() - start)
    return times


def bench_size(size: int, banks: Path, queries: list[str], repeats: int) -> dict[str, Any]:
    home = banks / f"bank{size}"
    row: dict[str, Any] = {}
    if (home / "memento.db").exists():
        print(f"  reusing the bank in {home}", flush=True)
    else:
        row.update(build_bank(size, home))
    memory = open_memory(Settings(home=home))
    row["index"] = memory.index.status().get("default")

    vectors = shared_encoder().encode(queries)
    truth = exact_top10(size, vectors)
    found = [memory.index.search("default", v, 10)[0] for v in vectors]
    row["recall_at_10"] = round(float(np.mean(
        [len(set(f.tolist()) & set(t.tolist())) / 10 for f, t in zip(found, truth, strict=True)]
    )), 4)
    row["dense_search"] = percentiles(timed(
        lambda i: memory.index.search("default", vectors[i % len(vectors)], 50), repeats))
    row["lexical_search"] = percentiles(timed(
        lambda i: memory.bank.lexical_search("default", queries[i % len(queries)], 50), repeats))

    exact = open_memory(Settings(home=home, ann_min_cases=EXACT))
    exact.retrieve("load the vectors")
    for query in queries:  # every query's length through the encoder once (steady state)
        shared_encoder().encode_one(query)
    times = timed_pair({
        "index": lambda i: memory.retrieve(queries[i % len(queries)]),
        "exact": lambda i: exact.retrieve(queries[i % len(queries)]),
    }, repeats)
    row["retrieve_inprocess"] = percentiles(times["index"])
    row["exact_baseline"] = {"retrieve_inprocess": percentiles(times["exact"])}
    exact.close()
    del exact

    recorded: list[int] = []
    row["record_outcome"] = percentiles(timed(lambda i: recorded.append(memory.record_outcome(
        task=f"bench task {size} {i} {time.time()}", plan="p", answer="a", reward=1.0
    ).case_id or 0), 30))
    row["delete_case"] = percentiles(timed(lambda i: memory.delete_case(recorded.pop()), 30))
    memory.close()

    row.update(asyncio.run(over_stdio(home, queries[:repeats], {})))
    row["exact_baseline"].update(asyncio.run(over_stdio(
        home, queries[:repeats], {"MEMENTO_ANN_MIN_CASES": str(EXACT)})))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--skip-once", action="store_true", help="skip --help and encoding import")
    parser.add_argument("--banks", type=Path, help="keep the banks here and reuse them in later"
                        " runs (a 1M bank takes minutes to build); default: a temporary folder")
    args = parser.parse_args()

    results: dict[str, Any] = json.loads(OUT.read_text()) if OUT.exists() else {}
    results["machine"] = f"{os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f} at start"
    results.setdefault("sizes", {})
    queries = query_texts(100)
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        banks = args.banks or tmp
        if not args.skip_once:
            results["help_wall_s"] = help_wall()
            results["import_with_encoding_cases_per_s"] = import_with_encoding(tmp)
            encoder = shared_encoder()
            results["encode_query"] = percentiles(timed(
                lambda i: encoder.encode_one(queries[i % len(queries)]), args.repeats))
            print({k: results[k] for k in ("help_wall_s", "import_with_encoding_cases_per_s",
                                           "encode_query")}, flush=True)
        for size in args.sizes:
            print(f"{size:,} cases", flush=True)
            row = bench_size(size, banks, queries, args.repeats)
            row["load_average"] = round(os.getloadavg()[0], 1)
            results["sizes"][str(size)] = row
            print(json.dumps(row, indent=1), flush=True)
            OUT.parent.mkdir(exist_ok=True)
            OUT.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
