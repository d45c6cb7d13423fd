"""What learning costs serving, in process: bench/load.py's mix without the HTTP stack (issue 9).

    python bench/learning_cost.py [--threads 8] [--calls 400] [--blocks 3]

bench/load.py answers the issue's question (8 HTTP clients, learning on against off), but one
comparison takes 7 minutes and moves by ±6 % between runs. This runs the same mix against one
`Memory` in this process, about a minute in all, so that a change to the learned path can be
judged before the load run:

- The starter bank (Memento's 1,278 public cases) is imported into a temporary home, plans
  embedded, retraining off (`retrain_every` 10^9: the SCHED_IDLE training subprocess cost about
  1 % of bench/load.py's throughput when measured apart; this measures ranking).
- `--threads` threads each make `--calls` calls: 80 % `retrieve(query, k=4)` on a starter task
  (half of them lightly reworded), 20 % `record_outcome(request_id, coin-flip reward)` for one of
  the thread's own unreported requests, as bench/load.py's clients do. Threads, because the
  server runs its tools in worker threads, and the learned path costs more CPU per call there
  than in one thread (8 threads: 0.5-0.7 ms a call against 0.3 in one).
- Learning on (`ranking` learned, the default) and off (similarity) take turns, `--blocks` times
  each, on the same bank; the bank keeps growing in both.

Prints per block and the medians: calls/s (wall), process CPU ms per call (user + system); and
the on/off throughput ratio. Runs of the same code on this 2-core machine gave 0.912, 0.894 and
0.897 (learning 0.36-0.51 ms CPU per call): a minute instead of seven, but no less noisy than
bench/load.py, so compare several runs. Writes bench/out/learning_cost.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from memento_mcp.memory import Memory, open_memory
from memento_mcp.settings import Settings
from memento_mcp.transfer import import_file

sys.path.insert(0, str(Path(__file__).parent))
from load import OUT, REWORDINGS, STARTER, starter_tasks  # bench/load.py's mix, one definition

MODES = {"on": "learned", "off": "similarity"}


def client(memory: Memory, tasks: list[str], calls: int, seed: int) -> None:
    rng = random.Random(seed)
    pending: list[str] = []
    for _ in range(calls):
        if pending and rng.random() < 0.2:
            request_id = pending.pop(rng.randrange(len(pending)))
            memory.record_outcome(request_id=request_id, reward=float(rng.random() < 0.5))
        else:
            query = rng.choice(REWORDINGS).format(rng.choice(tasks))
            pending.append(memory.retrieve(query, k=4).request_id)


def block(
    memory: Memory, tasks: list[str], threads: int, calls: int, seed: int
) -> dict[str, float]:
    """One round of `threads` clients; its throughput and CPU per call."""
    before, started = os.times(), time.perf_counter()
    workers = [
        threading.Thread(target=client, args=(memory, tasks, calls, seed * 1000 + i))
        for i in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    wall, after = time.perf_counter() - started, os.times()
    cpu = (after.user - before.user) + (after.system - before.system)
    n = threads * calls
    return {"calls_per_s": n / wall, "cpu_ms_per_call": cpu / n * 1e3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--calls", type=int, default=400, help="calls per thread per block")
    parser.add_argument("--blocks", type=int, default=3, help="blocks per mode, taking turns")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="memento-learning-cost-"))
    memory = open_memory(Settings(home=home, retrain_every=10**9))
    import_file(memory, STARTER)  # embeds the plans too
    tasks = starter_tasks()
    client(memory, tasks, 200, seed=-1)  # warm the encoder, the index and the kept histories

    results: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
    for i in range(args.blocks):
        for mode, ranking in MODES.items():
            memory.settings = memory.settings.model_copy(update={"ranking": ranking})
            run = block(memory, tasks, args.threads, args.calls, seed=i)
            results[mode].append(run)
            print(f"[{mode}] block {i + 1}: {run['calls_per_s']:.0f} calls/s,"
                  f" {run['cpu_ms_per_call']:.2f} ms CPU per call", flush=True)  # fmt: skip
    memory.close()

    summary = {
        mode: {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        for mode, runs in results.items()
    }
    ratio = summary["on"]["calls_per_s"] / summary["off"]["calls_per_s"]
    extra = summary["on"]["cpu_ms_per_call"] - summary["off"]["cpu_ms_per_call"]
    print(f"median: on {summary['on']['calls_per_s']:.0f} calls/s, off"
          f" {summary['off']['calls_per_s']:.0f}; throughput on / off {ratio:.3f};"
          f" learning costs {extra:.2f} ms CPU per call")  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "learning_cost.json"
    report = {"args": {k: str(v) for k, v in vars(args).items()}, "blocks": results,
              "median": summary, "ratio": ratio, "extra_cpu_ms_per_call": extra}  # fmt: skip
    path.write_text(json.dumps(report, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
