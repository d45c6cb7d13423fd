"""One training run for one namespace: embed new plans, train, value, register, promote, prune.

    python -m retriever.job --db PATH|postgresql://... --namespace NS --checkpoint-dir DIR [--keep 5]

`online.OnlineTrainer` starts this as a subprocess at the lowest CPU priority, so that the
server never imports torch, its memory does not grow with training, and a retrain takes only
the CPU that serving leaves idle. The last line on stdout is the run's record as JSON. Banks
without a file (tests) call `run` in a thread instead.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from retriever.contract import Bank
from retriever.data import Encode, data_hash, held_out_mask
from retriever.versions import (
    CheckpointError,
    new_version,
    prune,
    serving_path,
    write_last_run,
)

log = logging.getLogger(__name__)

TRAINING_LOCK = "memento-retrain"
"""One training run at a time across every replica of a database (issue 11)."""
MIN_TRAIN_ROWS = 20
MIN_HELD_OUT_REQUESTS = 5
HELD_OUT_FRACTION = 0.2
Progress = Callable[[int, int], None]  # (done, total)


def embed_plans(bank: Any, encode: Encode, progress: Progress | None = None) -> int:
    """Embed every plan that has none yet (a bank from before plans were embedded, or new cases).

    Each batch is stored as it is done, so an interrupted run resumes where it stopped.
    """
    todo = bank.plans_to_embed(limit=10**9)
    for start in range(0, len(todo), 64):
        batch = todo[start : start + 64]
        vectors = encode([plan for _, plan in batch])
        bank.add_plan_vectors({case_id: v for (case_id, _), v in zip(batch, vectors, strict=True)})
        if progress is not None:
            progress(start + len(batch), len(todo))
    return len(todo)


def retrain(
    bank: Bank,
    namespace: str,
    checkpoint_dir: Path,
    *,
    train_config: Any = None,
    held_out_fraction: float = HELD_OUT_FRACTION,
) -> dict[str, Any]:
    """Train on the namespace's training requests, value it against what serves, maybe promote.

    Returns the run's record: version (None when nothing was trained), promoted, reason, metrics.
    """
    from retriever.checkpoint import head_arrays, save_checkpoint
    from retriever.evaluate import evaluate
    from retriever.model import HeadConfig
    from retriever.ope import compare
    from retriever.scorer import HeadModel, load_model
    from retriever.train import train_head

    data = bank.training_set(namespace)
    held = held_out_mask(data.request_ids, held_out_fraction)
    train, test = data.take(~held), data.take(held)
    n_test_requests = len(set(test.request_ids))
    if len(train) < MIN_TRAIN_ROWS or n_test_requests < MIN_HELD_OUT_REQUESTS:
        reason = f"too little data: {len(train)} training rows, {n_test_requests} held-out requests"
        return {"version": None, "promoted": False, "reason": reason, "metrics": {}}

    config = HeadConfig(embed_dim=data.query_vecs.shape[1])
    model, summary = train_head(train, train_config, config)
    version = new_version()
    metrics: dict[str, Any] = evaluate(model, test)  # AUC and friends: diagnostics

    active = bank.active_retriever(namespace)
    incumbent, incumbent_name = None, "similarity"
    if active is not None:
        try:
            incumbent = load_model(serving_path(active["path"]), active["version"])
            incumbent_name = active["version"]
        except CheckpointError as exc:  # a broken incumbent serves no prior, so that is the bar
            log.warning("incumbent %s unreadable, valuing against similarity: %s",
                        active["version"], exc)  # fmt: skip
    value = compare(
        HeadModel(head_arrays(model), version), incumbent, test, bank.namespace_vectors(namespace)
    )
    metrics |= value  # its n_requests is evaluate's: the same held-out requests
    metrics |= {
        "incumbent": incumbent_name,
        "data_hash": data_hash(data),
        "n_train": summary["n_train"],
        "n_labelled": len(data),
        "train_seconds": round(summary["seconds"], 3),
        "steps": summary["steps"],
    }
    path = save_checkpoint(
        checkpoint_dir / f"{version}.pt", model, config, version=version, metrics=metrics,
        data_hash=metrics["data_hash"], step=summary["steps"],
    )  # fmt: skip
    bank.add_retriever_version(version, str(path), metrics, namespace)
    if value["promote"]:
        bank.activate_retriever(version)
    log.info("retriever %s/%s %s (%s)", namespace, version,
             "promoted" if value["promote"] else "kept inactive", value["gate"])  # fmt: skip
    return {"version": version, "promoted": value["promote"], "reason": value["gate"],
            "metrics": metrics}  # fmt: skip


def run(
    bank: Bank,
    namespace: str,
    checkpoint_dir: Path,
    keep: int,
    *,
    encode: Encode | None = None,
    progress: Progress | None = None,
    train_config: Any = None,
) -> dict[str, Any]:
    """The whole job: embed plans (when an encoder is given), retrain, prune; records the run."""
    checkpoint_dir = Path(checkpoint_dir)
    with _exclusive(bank, TRAINING_LOCK) as mine:
        if not mine:  # another replica on the same database is training: its result will serve
            return {"version": None, "promoted": False, "namespace": namespace,
                    "reason": "another replica is training; this run was skipped"}  # fmt: skip
        embedded = embed_plans(bank, encode, progress) if encode is not None else 0
        result = retrain(bank, namespace, checkpoint_dir, train_config=train_config)
        result |= {"namespace": namespace, "plans_embedded": embedded,
                   "pruned": prune(bank, namespace, keep)}  # fmt: skip
    write_last_run(checkpoint_dir, namespace, result)
    return result


def _exclusive(bank: Bank, name: str) -> AbstractContextManager[bool]:
    """The bank's database-wide lock `name` where it has one (Postgres: several replicas share
    it); a SQLite bank is served by one process's trainer, which runs one job at a time."""
    lock = getattr(bank, "exclusive", None)
    return lock(name) if lock is not None else nullcontext(True)


def _die_with_server() -> None:
    """End this run when the server that started it ends (Linux): a run nobody waits for would
    otherwise train on for up to online.TIME_LIMIT, and a restarted server starts another."""
    server = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != server:  # the server was already gone before the line above
        os._exit(1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="the SQLite file, or postgresql://...")
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--checkpoint-dir", required=True, type=Path)
    parser.add_argument("--keep", type=int, default=5)
    args = parser.parse_args(argv)
    _die_with_server()
    # Serving first: this job only gets the CPU nobody else wants. SCHED_IDLE runs it only when
    # a core is idle (nice 19 still takes a few % from a busy server); nice where not allowed.
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        os.nice(19)
    import torch

    torch.set_num_threads(1)
    from memento_mcp.casebank import is_database_url, open_bank
    from memento_mcp.retrieval.encoder import shared_encoder
    from retriever.train import TrainConfig

    # A database's URL (with its password) comes through the environment, not the command line.
    url = os.environ.get("MEMENTO_DATABASE_URL")
    bank = open_bank(url if is_database_url(str(args.db)) and url else args.db)
    try:
        result = run(bank, args.namespace, args.checkpoint_dir, args.keep,
                     encode=shared_encoder().encode, train_config=TrainConfig(threads=1))  # fmt: skip
    finally:
        bank.close()
    sys.stdout.write(json.dumps(result, default=str) + "\n")


if __name__ == "__main__":
    main()
