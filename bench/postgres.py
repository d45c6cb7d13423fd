"""SQLite vs PostgreSQL + pgvector, side by side in one run (issue 11).

    python bench/postgres.py [--sizes 10000 100000] [--repeats 200] [--duration 60] [--clients 16]

What it does (read this before quoting the numbers):

- Per size, writes a synthetic bank (bench/_synthetic.py: real MiniLM vectors of the starter
  tasks, mixed and perturbed; two thirds answered well) into a SQLite bank with precomputed
  vectors, then copies it into a fresh PostgreSQL database with `migrate`'s code
  (casebank/postgres/copy.py). The server is pgserver's PostgreSQL 16.2 + pgvector 0.6.2 on
  this machine, or MEMENTO_BENCH_DATABASE_URL's; it shares the 2 cores with everything else.
- In-process, per backend: recall@10 of the dense search against exact cosine over the same
  vectors (SQLite: usearch HNSW above 20k cases; Postgres: pgvector HNSW, ef_search widened by
  the namespace's share), then `Memory.retrieve` p50/p99 over `--repeats` queries (encoding
  included; the two backends take turns in blocks of 20 calls) and `record_outcome` p50 (a new
  case with its embedding, 50 calls).
- Over HTTP, per backend: one `memento-mcp serve --transport http` replica, one client, p50/p99
  of `retrieve_cases` over `--repeats` calls.
- Load, at the largest size only, per backend: `--clients` MCP clients over streamable HTTP for
  `--duration` s, spread round-robin over 1 and then 3 replicas on the same bank (SQLite: three
  servers on one file; Postgres: three on one database). 80 % retrieve_cases, 20 %
  record_outcome(request_id) of an own earlier retrieval. Reported: throughput, p99, errors, and
  lost writes: acknowledged outcomes missing from the bank afterwards (must be 0).
- Each phase (in-process, HTTP, load) runs on both backends before the next begins: the load
  phase's outcomes start retraining subprocesses, which must not overlap a latency phase.
- Medians; ratios are Postgres / SQLite. Writes bench/out/postgres.json and prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _synthetic import query_texts, starter_tasks
from load import REWORDINGS, free_port, mcp_client, percentile, wait_ready
from retrieval import exact_top10, percentiles, timed, timed_pair, write_cases

from memento_mcp import transfer
from memento_mcp.casebank import CaseBank
from memento_mcp.casebank.postgres import PostgresBank
from memento_mcp.casebank.postgres.copy import copy_bank
from memento_mcp.memory import open_memory
from memento_mcp.retrieval.encoder import shared_encoder
from memento_mcp.settings import Settings

OUT = Path(__file__).parent / "out" / "postgres.json"
QUIET = {"FASTMCP_SHOW_SERVER_BANNER": "false", "FASTMCP_CHECK_FOR_UPDATES": "off",
         "FASTMCP_LOG_LEVEL": "ERROR"}  # fmt: skip


class Database:
    """A PostgreSQL server for the bench, with one database per size."""

    def __init__(self) -> None:
        self.url = os.environ.get("MEMENTO_BENCH_DATABASE_URL")
        self.dir: str | None = None
        if not self.url:
            import pgserver

            self.dir = tempfile.mkdtemp(prefix="memento-bench-pg-")
            self.server = pgserver.get_server(self.dir, cleanup_mode="stop")
            self.url = self.server.get_uri()

    def new(self, name: str) -> str:
        import psycopg

        sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
        from postgres_server import with_database

        assert self.url is not None
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())
            conn.execute(f'CREATE DATABASE "{name}"'.encode())
        return str(with_database(self.url, name))

    def close(self) -> None:
        if self.dir:
            self.server.cleanup()
            shutil.rmtree(self.dir, ignore_errors=True)


def build(size: int, tmp: Path, db: Database) -> dict[str, Any]:
    """The SQLite bank (home) and its copy in Postgres (url), with how long each took."""
    home, source = tmp / f"sqlite{size}", tmp / f"cases{size}.jsonl"
    write_cases(source, size)
    memory = open_memory(Settings(home=home))
    t = time.perf_counter()
    transfer.import_file(memory, source)
    memory.index.flush()
    sqlite_s = time.perf_counter() - t
    memory.close()
    source.unlink()
    url = db.new(f"bench_{size}")
    t = time.perf_counter()
    bank, target = CaseBank(home / "memento.db"), PostgresBank(url)
    copy_bank(bank, target)
    migrate_s = time.perf_counter() - t
    bank.close()
    target.close()
    return {"home": home, "url": url, "sqlite_import_s": round(sqlite_s, 1),
            "postgres_migrate_s": round(migrate_s, 1)}  # fmt: skip


def in_process(
    backends: dict[str, Settings], size: int, queries: list[str], repeats: int
) -> dict[str, dict[str, Any]]:
    """Per backend: recall@10, dense search, retrieve and record_outcome latencies in-process.

    Retrieve runs on both backends in turns of 20 calls (retrieval.timed_pair), so that the
    load of this shared machine, which changes from minute to minute, lands on both alike.
    """
    memories = {backend: open_memory(settings) for backend, settings in backends.items()}
    vectors = shared_encoder().encode(queries)
    truth = exact_top10(size, vectors)
    rows: dict[str, dict[str, Any]] = {}
    for backend, memory in memories.items():
        found = [memory.index.search("default", v, 10)[0] for v in vectors]
        recall = np.mean(
            [len(set(f.tolist()) & set(t.tolist())) / 10 for f, t in zip(found, truth)]
        )
        rows[backend] = {"recall_at_10": round(float(recall), 4)}
        rows[backend]["dense_search"] = percentiles(timed(
            lambda i, m=memory: m.index.search("default", vectors[i % len(vectors)], 50), repeats
        ))  # fmt: skip
    retrieves = timed_pair(
        {b: lambda i, m=m: m.retrieve(queries[i % len(queries)]) for b, m in memories.items()},
        repeats,
    )
    for backend, memory in memories.items():
        rows[backend]["retrieve_inprocess"] = percentiles(retrieves[backend])
        rows[backend]["record_outcome"] = percentiles(timed(
            lambda i, m=memory: m.record_outcome(
                task=f"bench task {size} {i} {time.time()}", plan="p", answer="a", reward=1.0
            ),
            50,
        ))  # fmt: skip
        memory.close()
    return rows


def start(settings: Settings) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, **QUIET, "MEMENTO_HOME": str(settings.home)}
    if settings.database_url:
        env["MEMENTO_DATABASE_URL"] = settings.database_url
    proc = subprocess.Popen(
        [sys.executable, "-m", "memento_mcp", "serve", "--transport", "http", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc, f"http://127.0.0.1:{port}/mcp"


async def over_http(url: str, queries: list[str], repeats: int) -> dict[str, Any]:
    async with mcp_client(url, timeout=120) as client:
        await client.call_tool("retrieve_cases", {"query": queries[0]})
        times = []
        for i in range(repeats):
            t = time.perf_counter()
            await client.call_tool("retrieve_cases", {"query": queries[i % len(queries)]})
            times.append(time.perf_counter() - t)
    return {"retrieve_http": percentiles(times)}


async def client_loop(url: str, seed: int, deadline: float, tasks: list[str]) -> dict[str, Any]:
    rng = random.Random(seed)
    latencies: list[float] = []
    errors, acknowledged, pending = 0, [], []
    async with mcp_client(url, timeout=30) as client:
        while time.monotonic() < deadline:
            if pending and rng.random() < 0.2:
                tool, args = "record_outcome", {"request_id": pending.pop(), "reward": 1.0}
            else:
                query = rng.choice(REWORDINGS).format(rng.choice(tasks))
                tool, args = "retrieve_cases", {"query": query}
            t = time.perf_counter()
            try:
                result = await asyncio.wait_for(client.call_tool(tool, args), 30)
            except Exception:  # noqa: BLE001 - counted, the client goes on
                errors += 1
                continue
            latencies.append(time.perf_counter() - t)
            if tool == "retrieve_cases":
                pending.append(result.structured_content["request_id"])
            else:
                acknowledged.append(args["request_id"])
    return {"latencies": latencies, "errors": errors, "acknowledged": acknowledged}


async def load(urls: list[str], clients: int, duration: float) -> dict[str, Any]:
    tasks = starter_tasks()
    deadline = time.monotonic() + duration
    runs = await asyncio.gather(
        *(client_loop(urls[c % len(urls)], c, deadline, tasks) for c in range(clients))
    )
    latencies = [x for run in runs for x in run["latencies"]]
    return {
        "calls_per_s": round(len(latencies) / duration, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "p99_ms": round(percentile(latencies, 99) * 1000, 1),
        "errors": sum(run["errors"] for run in runs),
        "acknowledged": [r for run in runs for r in run["acknowledged"]],
    }


def lost_writes(settings: Settings, acknowledged: list[str]) -> int:
    memory = open_memory(settings)
    stored = {row[0] for row in memory.bank._query("SELECT request_id FROM outcomes")}
    memory.close()
    return len(set(acknowledged) - stored)


async def serving(settings: Settings, queries: list[str], repeats: int, loads: bool,
                  clients: int, duration: float) -> dict[str, Any]:  # fmt: skip
    """One replica's retrieve latency over HTTP; with `loads`, only the runs under load."""
    procs = [start(settings) for _ in range(3 if loads else 1)]
    try:
        for proc, url in procs:
            await wait_ready(url, proc)
        row = {} if loads else await over_http(procs[0][1], queries, repeats)
        if loads:
            for n in (1, 3):
                result = await load([url for _, url in procs[:n]], clients, duration)
                result["lost_writes"] = lost_writes(settings, result.pop("acknowledged"))
                row[f"load_{n}_replicas"] = result
                print(f"    {n} replica(s): {result}", flush=True)
        return row
    finally:
        for proc, _ in procs:
            proc.terminate()
            proc.wait(timeout=30)


def table(results: dict[str, Any]) -> str:
    lines = ["| cases | measure | SQLite | Postgres | Postgres / SQLite |", "|---|---|---|---|---|"]
    for size, row in results["sizes"].items():
        s, p = row["sqlite"], row["postgres"]
        measures = [
            ("recall@10 vs exact", s["recall_at_10"], p["recall_at_10"]),
            ("retrieve p50 in-process (ms)", s["retrieve_inprocess"]["p50_ms"], p["retrieve_inprocess"]["p50_ms"]),
            ("retrieve p99 in-process (ms)", s["retrieve_inprocess"]["p99_ms"], p["retrieve_inprocess"]["p99_ms"]),
            ("dense search p50 (ms)", s["dense_search"]["p50_ms"], p["dense_search"]["p50_ms"]),
            ("retrieve p50 over HTTP (ms)", s["retrieve_http"]["p50_ms"], p["retrieve_http"]["p50_ms"]),
            ("retrieve p99 over HTTP (ms)", s["retrieve_http"]["p99_ms"], p["retrieve_http"]["p99_ms"]),
            ("record_outcome p50 (ms)", s["record_outcome"]["p50_ms"], p["record_outcome"]["p50_ms"]),
        ]  # fmt: skip
        for n in (1, 3):
            key = f"load_{n}_replicas"
            if key in s:
                for label, field in (
                    ("calls/s", "calls_per_s"),
                    ("p99 (ms)", "p99_ms"),
                    ("errors", "errors"),
                    ("lost writes", "lost_writes"),
                ):
                    measures.append((f"{results['clients']} clients, {n} replica(s): {label}",
                                     s[key][field], p[key][field]))  # fmt: skip
        for name, a, b in measures:
            ratio = f"{b / a:.2f}" if isinstance(a, float | int) and a else ""
            lines.append(f"| {int(size):,} | {name} | {a} | {b} | {ratio} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    results: dict[str, Any] = {"machine": f"{os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}",
                               "clients": args.clients, "duration_s": args.duration, "sizes": {}}  # fmt: skip
    queries = query_texts(100)
    db = Database()
    try:
        with tempfile.TemporaryDirectory() as name:
            for size in args.sizes:
                print(f"{size:,} cases", flush=True)
                built = build(size, Path(name), db)
                print(f"  built: {built}", flush=True)
                row: dict[str, Any] = {
                    k: built[k] for k in ("sqlite_import_s", "postgres_migrate_s")
                }
                backends = {
                    backend: Settings(home=built["home"], database_url=url)
                    for backend, url in (("sqlite", None), ("postgres", built["url"]))
                }
                # Phase by phase, both backends in turn: the load phase's outcomes start
                # retraining subprocesses that would otherwise still run while the other
                # backend's latencies are measured.
                row |= in_process(backends, size, queries, args.repeats)
                for backend, settings in backends.items():
                    row[backend] |= asyncio.run(serving(
                        settings, queries, args.repeats, False, args.clients, args.duration
                    ))  # fmt: skip
                for backend, settings in backends.items():
                    if size == max(args.sizes):
                        row[backend] |= asyncio.run(serving(
                            settings, queries, args.repeats, True, args.clients, args.duration
                        ))  # fmt: skip
                    print(f"  {backend}: {json.dumps(row[backend])}", flush=True)
                row["load_average"] = round(os.getloadavg()[0], 1)
                results["sizes"][str(size)] = row
                OUT.parent.mkdir(exist_ok=True)
                OUT.write_text(json.dumps(results, indent=2))
    finally:
        db.close()
    print(table(results))


if __name__ == "__main__":
    main()
