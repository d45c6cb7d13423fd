"""Where a PostgreSQL retrieve spends its time: round trips and milliseconds per bank call.

    python bench/postgres_profile.py --url postgresql://... [--home DIR] [--repeats 200]
    python bench/postgres_profile.py --build 100000 --home DIR     # makes DIR/sqlite + a database

With --build, writes a synthetic bank of that size (bench/_synthetic.py) into DIR as SQLite and
copies it into a fresh database (pgserver's, left running under DIR/pg; its URL is printed and
kept in DIR/url). Without it, profiles `Memory.retrieve` on the bank at --url (default: DIR/url)
and, for the ratio, on the SQLite bank beside it, in one process, taking turns in blocks.

A round trip is counted from libpq's trace of every pooled connection: each time the client
sends after the server last answered. Per bank method (the seam memory.py calls through) it
prints calls, median ms and round trips per retrieve; then retrieve p50 on each bank and the
ratio.
"""

from __future__ import annotations

import argparse
import collections
import functools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _synthetic import query_texts
from retrieval import timed_pair, write_cases

from memento_mcp import transfer
from memento_mcp.casebank import CaseBank
from memento_mcp.casebank.postgres import PostgresBank, connection
from memento_mcp.casebank.postgres.copy import copy_bank
from memento_mcp.memory import open_memory
from memento_mcp.settings import Settings

TRACED = [
    "lexical_search", "nearest", "labelled_vectors", "candidates", "active_retriever",
    "plan_vectors", "case_history", "cases_by_id", "log_request",
]  # fmt: skip


class Trace:
    """libpq traces of every pooled connection, read back to count round trips."""

    def __init__(self) -> None:
        self.traced: list[tuple[Any, Any]] = []  # (connection, its trace file)
        self.on = True
        original = connection.register_vector

        def configure(conn: Any) -> None:
            original(conn)
            if self.on:
                handle = tempfile.TemporaryFile("w+b")  # noqa: SIM115 - open while traced
                conn.pgconn.trace(handle.fileno())
                conn.pgconn.set_trace_flags(1)  # PQTRACE_SUPPRESS_TIMESTAMPS
                self.traced.append((conn, handle))

        connection.register_vector = configure  # before the pool opens its connections

    def stop(self) -> None:
        """Tracing writes out every byte sent and received: it must be off while timing."""
        self.on = False
        for conn, handle in self.traced:
            conn.pgconn.untrace()
            handle.close()

    def round_trips(self) -> int:
        """Client -> server turns since the last call, over every connection."""
        turns = 0
        for _, handle in self.traced:
            handle.seek(0)
            last = "B"
            for line in handle.read().decode(errors="replace").splitlines():
                side = line[:1]
                if side == "F" and last == "B":
                    turns += 1
                if side in "FB":
                    last = side
            handle.seek(0)
            handle.truncate()
        return turns


def build(size: int, home: Path) -> None:
    import pgserver
    import psycopg

    home.mkdir(parents=True, exist_ok=True)
    source = home / "cases.jsonl"
    write_cases(source, size)
    memory = open_memory(Settings(home=home / "sqlite"))
    transfer.import_file(memory, source)
    memory.index.flush()
    memory.close()
    source.unlink()
    server = pgserver.get_server(home / "pg", cleanup_mode=None)
    admin = server.get_uri()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "bench_{size}" WITH (FORCE)'.encode())
        conn.execute(f'CREATE DATABASE "bench_{size}"'.encode())
    url = admin.replace("/postgres?", f"/bench_{size}?")
    bank, target = CaseBank(home / "sqlite" / "memento.db"), PostgresBank(url)
    copy_bank(bank, target)
    bank.close()
    target.close()
    (home / "url").write_text(url)
    print(url)


def profile(url: str, home: Path, repeats: int) -> None:
    trace = Trace()
    pg = open_memory(Settings(home=home / "sqlite", database_url=url))
    lite = open_memory(Settings(home=home / "sqlite"))
    queries = query_texts(100)
    spent: dict[str, list[float]] = collections.defaultdict(list)
    for name in TRACED:
        if not hasattr(pg.bank, name):
            continue
        method = getattr(pg.bank, name)

        @functools.wraps(method)
        def timed(*args: Any, _method: Any = method, _name: str = name, **kw: Any) -> Any:
            start = time.perf_counter()
            try:
                return _method(*args, **kw)
            finally:
                spent[_name].append(time.perf_counter() - start)

        setattr(pg.bank, name, timed)
    for i in range(20):  # warm-up: the encoder at each length, prepared statements
        pg.retrieve(queries[i % len(queries)])
        lite.retrieve(queries[i % len(queries)])
    trace.round_trips()
    spent.clear()
    total = 0
    for i in range(repeats):
        pg.retrieve(queries[i % len(queries)])
        total += trace.round_trips()
    print(f"round trips per retrieve: {total / repeats:.1f}")
    trace.stop()
    spent.clear()
    for i in range(repeats):
        pg.retrieve(queries[i % len(queries)])
    print(f"{'bank call':<20} {'calls/retrieve':>15} {'p50 ms':>8}")
    for name, times in spent.items():
        print(f"{name:<20} {len(times) / repeats:>15.2f} {statistics.median(times) * 1000:>8.2f}")
    runs = {
        "sqlite": lambda i: lite.retrieve(queries[i % len(queries)]),
        "postgres": lambda i: pg.retrieve(queries[i % len(queries)]),
    }
    times = timed_pair(runs, repeats)
    p50 = {name: statistics.median(t) * 1000 for name, t in times.items()}
    print(f"retrieve p50 ms: sqlite {p50['sqlite']:.2f}, postgres {p50['postgres']:.2f},"
          f" ratio {p50['postgres'] / p50['sqlite']:.2f} (load {os.getloadavg()[0]:.1f})")  # fmt: skip
    pg.close()
    lite.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--url")
    parser.add_argument("--build", type=int)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    if args.build:
        build(args.build, args.home)
        return
    url = args.url or (args.home / "url").read_text().strip()
    profile(url, args.home, args.repeats)


if __name__ == "__main__":
    main()
