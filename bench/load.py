"""Serving under load, with learning on and off: throughput, latency and memory (issue 9).

    python bench/load.py [--clients 8] [--duration 60] [--runs 3] [--idle 10] [--modes on,off]

What it does (read this before quoting the numbers):

- Imports the starter bank (`memento-mcp import --starter`, Memento's 1,278 public cases) once
  into a template MEMENTO_HOME, and copies it to a fresh home per mode.
- Per mode, starts one real server, `memento-mcp serve --transport http` on 127.0.0.1 and a free
  port: `on` with the default settings (learning on), `off` with MEMENTO_RANKING=similarity (plain
  cosine ranking, nothing learns or trains).
- One warm-up retrieve and record load the encoder and the index; then `--runs` runs against the same server process.
  In each, `--clients` MCP clients (fastmcp Client over streamable HTTP, one session each, all in
  this process's event loop) loop until `--duration` seconds have passed: 80 % of calls are
  `retrieve_cases(query, k=4)` on a starter-bank task (half of them lightly reworded), 20 % are
  `record_outcome(request_id, reward)` for one of the client's own unreported requests, with a
  coin-flip reward (a record turns into a retrieve while none is pending). Each call has a 30 s
  timeout; a timeout or a tool error counts as an error and the client goes on.
- Reported per run: throughput (completed calls/s), p50 and p99 latency per tool as the client saw
  it, errors, the server's CPU seconds, and its RSS (VmRSS of the server process, from /proc;
  training runs in a subprocess, reported beside it) right after the run and after `--idle` seconds idle. RSS is also taken before the first
  run (after the warm-up), and the retriever's checkpoint directory is measured at the end. The
  1-minute load average after each run says how busy the machine was with other work.
- The clients share the machine with the server (2 cores here), so absolute numbers are this
  machine's; compare on and off, and runs with each other.

Writes bench/out/load.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

OUT = Path(__file__).parent / "out"
STARTER = Path(__file__).parent.parent / "memento_mcp" / "data" / "memento_memory.jsonl"
CALL_TIMEOUT_S = 30.0
REWORDINGS = ["{}", "{}", "Can you help me with this: {}", "{} Please answer briefly."]


# -- the server --------------------------------------------------------------------------------


def cli() -> list[str]:
    exe = Path(sys.executable).parent / "memento-mcp"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "memento_mcp"]


def clean_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMENTO_")}
    return env | {"MEMENTO_HOME": str(home)} | (extra or {})


def starter_home() -> Path:
    home = Path(tempfile.mkdtemp(prefix="memento-load-template-"))
    t0 = time.perf_counter()
    subprocess.run(
        [*cli(), "import", "--starter"],
        env=clean_env(home),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    print(f"starter bank imported in {time.perf_counter() - t0:.0f}s", flush=True)
    return home


def mode_env(mode: str) -> tuple[dict[str, str], str]:
    """Environment for a mode, and what it means."""
    if mode == "on":
        return {}, "defaults"
    return {"MEMENTO_RANKING": "similarity"}, "MEMENTO_RANKING=similarity"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int, descendants: bool = False) -> float:
    """VmRSS of a process (and, asked, all its descendants: training subprocesses), in MB."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            if not descendants:
                break
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total / 1024


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def dir_mb(path: Path) -> tuple[int, float]:
    files = [f for f in path.rglob("*") if f.is_file()] if path.exists() else []
    return len(files), sum(f.stat().st_size for f in files) / 1e6


# -- the clients -------------------------------------------------------------------------------


def mcp_client(url: str, timeout: float) -> Any:
    from fastmcp import Client
    from fastmcp.client.transports import StreamableHttpTransport

    return Client(StreamableHttpTransport(url), timeout=timeout)


def starter_tasks() -> list[str]:
    return [json.loads(line)["case"] for line in STARTER.read_text().splitlines() if line.strip()]


async def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            async with mcp_client(url, timeout=5) as client:
                await client.list_tools()
                return
        except Exception:  # noqa: BLE001 - not listening yet
            await asyncio.sleep(0.5)
    raise SystemExit(f"the server did not answer at {url} within {timeout:.0f}s")


async def warm_up(url: str, tasks: list[str]) -> None:
    """One retrieve and one record: loads the encoder, the index and whatever ranks."""
    async with mcp_client(url, timeout=300) as client:
        res = await client.call_tool("retrieve_cases", {"query": tasks[0], "k": 4})
        await client.call_tool(
            "record_outcome", {"request_id": res.structured_content["request_id"], "reward": 1.0}
        )


async def one_client(url: str, seed: int, deadline: float, tasks: list[str]) -> dict[str, Any]:
    rng = random.Random(seed)
    latency: dict[str, list[float]] = {"retrieve_cases": [], "record_outcome": []}
    errors: dict[str, int] = {}
    pending: list[str] = []
    async with mcp_client(url, timeout=CALL_TIMEOUT_S) as client:
        while time.monotonic() < deadline:
            if rng.random() < 0.2 and pending:
                tool = "record_outcome"
                args: dict[str, Any] = {
                    "request_id": pending.pop(rng.randrange(len(pending))),
                    "reward": float(rng.random() < 0.5),
                }
            else:
                tool = "retrieve_cases"
                args = {"query": rng.choice(REWORDINGS).format(rng.choice(tasks)), "k": 4}
            t0 = time.perf_counter()
            try:
                res = await asyncio.wait_for(client.call_tool(tool, args), CALL_TIMEOUT_S)
            except Exception as exc:  # noqa: BLE001 - a failed call is data: count it, go on
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                continue
            latency[tool].append(time.perf_counter() - t0)
            if tool == "retrieve_cases":
                pending = (pending + [res.structured_content["request_id"]])[-50:]
    return {"latency": latency, "errors": errors}


def percentile(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q / 100 * (len(xs) - 1)))]


async def load_run(
    url: str, clients: int, duration: float, seed: int, tasks: list[str]
) -> dict[str, Any]:
    t0 = time.monotonic()
    results = await asyncio.gather(
        *(one_client(url, seed * 1000 + c, t0 + duration, tasks) for c in range(clients))
    )
    seconds = time.monotonic() - t0
    out: dict[str, Any] = {"seconds": seconds, "errors": {}}
    calls = 0
    for tool in ("retrieve_cases", "record_outcome"):
        xs = [x for r in results for x in r["latency"][tool]]
        calls += len(xs)
        out[tool] = {
            "calls": len(xs),
            "p50_ms": percentile(xs, 50) * 1000,
            "p99_ms": percentile(xs, 99) * 1000,
        }
    for r in results:
        for name, n in r["errors"].items():
            out["errors"][name] = out["errors"].get(name, 0) + n
    out["throughput"] = calls / seconds
    return out


# -- one mode ----------------------------------------------------------------------------------


async def run_mode(
    mode: str, template: Path, args: argparse.Namespace, tasks: list[str]
) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix=f"memento-load-{mode}-"))
    shutil.copytree(template, home, dirs_exist_ok=True)
    extra, meaning = mode_env(mode)
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    log = (home / "server.log").open("wb")
    proc = subprocess.Popen(  # noqa: ASYNC220 - started once, not awaited
        [*cli(), "serve", "--transport", "http", "--host", "127.0.0.1", "--port", str(port)],
        env=clean_env(home, extra),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    result: dict[str, Any] = {"mode": mode, "settings": meaning, "runs": []}
    try:
        await wait_ready(url, proc)
        result["rss_started_mb"] = rss_mb(proc.pid)
        await warm_up(url, tasks)
        result["rss_before_mb"] = rss_mb(proc.pid)
        print(
            f"[{mode}] {meaning}; RSS {result['rss_started_mb']:.0f} MB started,"
            f" {result['rss_before_mb']:.0f} MB after warm-up",
            flush=True,
        )
        for i in range(args.runs):
            cpu0 = cpu_seconds(proc.pid)
            run = await load_run(url, args.clients, args.duration, i + 1, tasks)
            run["server_cpu_s"] = cpu_seconds(proc.pid) - cpu0
            run["loadavg_1min"] = os.getloadavg()[0]  # others' work on this machine shows here
            run["rss_after_mb"] = rss_mb(proc.pid)
            run["rss_with_training_mb"] = rss_mb(proc.pid, descendants=True)
            await asyncio.sleep(args.idle)
            run["rss_idle_mb"] = rss_mb(proc.pid)
            result["runs"].append(run)
            print(
                f"[{mode}] run {i + 1}: {run['throughput']:.1f} req/s,"
                f" RSS {run['rss_after_mb']:.0f} -> {run['rss_idle_mb']:.0f} MB idle"
                f" ({run['rss_with_training_mb']:.0f} MB with a training subprocess, if one ran),"
                f" load average {run['loadavg_1min']:.1f}",
                flush=True,
            )
        result["checkpoints"] = dict(zip(("files", "mb"), dir_mb(home / "retriever"), strict=True))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    result["server_log_tail"] = (home / "server.log").read_text(errors="replace")[-2000:]
    shutil.rmtree(home, ignore_errors=True)
    return result


def table(results: list[dict[str, Any]]) -> str:
    head = [
        "mode",
        "run",
        "req/s",
        "retrieve p50/p99 ms",
        "record p50/p99 ms",
        "errors",
        "server CPU s",
        "load avg",
        "RSS after run MB",
        "RSS after idle MB",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        lines.append(f"| {r['mode']} | before | | | | | | | {r['rss_before_mb']:.0f} | |")
        for i, run in enumerate(r["runs"], start=1):
            ret, rec = run["retrieve_cases"], run["record_outcome"]
            lines.append(
                f"| {r['mode']} | {i} | {run['throughput']:.1f} | {ret['p50_ms']:.0f} / {ret['p99_ms']:.0f}"
                f" | {rec['p50_ms']:.0f} / {rec['p99_ms']:.0f} | {sum(run['errors'].values())}"
                f" | {run['server_cpu_s']:.0f} | {run['loadavg_1min']:.1f} | {run['rss_after_mb']:.0f} | {run['rss_idle_mb']:.0f} |"
            )
    by = {r["mode"]: r for r in results}
    notes = []
    for r in results:
        growth = r["runs"][-1]["rss_idle_mb"] - r["rss_before_mb"]
        notes.append(
            f"{r['mode']} ({r['settings']}): RSS after the last idle - before = {growth:+.0f} MB;"
            f" checkpoints {r['checkpoints']['files']} files, {r['checkpoints']['mb']:.1f} MB"
        )
    if "on" in by and "off" in by:
        on = sorted(run["throughput"] for run in by["on"]["runs"])
        off = sorted(run["throughput"] for run in by["off"]["runs"])
        notes.append(
            f"throughput on / off (median of runs): {on[len(on) // 2] / off[len(off) // 2]:.2f}"
        )
    return "\n".join(lines + [""] + [f"- {n}" for n in notes])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per run")
    parser.add_argument("--runs", type=int, default=3, help="runs per mode, same server process")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds idle before the idle RSS")
    parser.add_argument("--modes", default="on,off", help="on = defaults, off = ranking=similarity")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    modes = args.modes.split(",")
    if set(modes) - {"on", "off"}:
        parser.error("--modes takes on, off or both")
    tasks = starter_tasks()
    template = starter_home()
    t0 = time.perf_counter()
    results = [await run_mode(mode, template, args, tasks) for mode in modes]
    shutil.rmtree(template, ignore_errors=True)
    markdown = table(results)
    print(markdown)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "load.json"
    path.write_text(
        json.dumps(
            {
                "args": {**vars(args), "out": str(args.out)},
                "seconds": time.perf_counter() - t0,
                "results": results,
                "table": markdown,
            },
            indent=1,
        )
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    asyncio.run(main())
