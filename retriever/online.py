"""Online learning as the server sees it: serve each namespace's prior model, retrain it aside.

Retrieval learns from every outcome at once through each case's evidence (retriever.policy);
the trained model only sets the prior for cases without evidence, so it can be retrained
lazily, away from serving:

- `model(namespace)` asks the bank which version is active (one row, read on every request after
  anything was committed, so another process's promotion or rollback is seen on the next
  request) and loads that version's numpy weights once. A file that fails to load means no
  prior (0.5), with the reason in `status()`. Nothing here imports torch.
- `weigh(namespace, ...)` gives the candidates' priors, that model's corrected by the
  namespace's plan prior (retriever.plan_prior), and their recent outcomes, kept in process
  (retriever.histories). It first reads the showings labelled since its last call, by any
  process: they teach the plan prior and retire the kept histories of their cases.
- `notify_labelled(namespace, n)` counts labels; after `retrain_every` in a namespace one
  training run starts for it (retriever.job), never two runs at once. With a bank in a file the
  run is a subprocess at the lowest priority with one torch thread and a wall-clock cap: the
  server's memory does not grow with training and its CPU share stays small. Banks without a
  file (tests) train in a thread.
- A run trains, values the model against what serves off-policy (retriever.ope), promotes it
  only when it is measurably better, and prunes old inactive checkpoints. Whatever goes wrong is
  logged and recorded in `status()`; the active version keeps serving.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from retriever.contract import Bank, History, PriorModel
from retriever.histories import MAX_AGE, RecentHistories
from retriever.plan_prior import PlanPrior
from retriever.scorer import load_model
from retriever.versions import CheckpointError, read_last_run, serving_path

log = logging.getLogger(__name__)

TIME_LIMIT = 600.0  # seconds a run may take, plan embedding of a large bank included
REST = 9.0
"""After a run that took T seconds the next starts no sooner than REST x T later, so training
keeps to a tenth of one core however fast labels arrive. Under load (bench/load.py: 8 clients,
a run due every 2 s) back-to-back runs cost the server 8 % of its throughput even at the lowest
priority; every outcome already counts at once through the cases' evidence and the plan prior."""
PLAN_WINDOW = 2000
"""Showings a plan prior starts from in a new process (older ones weigh < 0.1 %, plan_prior)."""


@dataclass
class Weighed:
    """The candidates as the learner knows them (OnlineTrainer.weigh)."""

    priors: np.ndarray  # (N,) prior P(help) of each case
    history: History  # their recent labelled showings (retriever.policy.contextual_evidence)
    model: PriorModel | None  # the trained model behind the priors, if one serves


@dataclass
class _Learnt:
    plans: PlanPrior
    model: PriorModel | None = None  # the namespace's active model when the bank was last read
    generation: object | None = None  # the bank's generation then (Bank.generation)
    revocations: int | None = None  # and its newest revocation (Bank.revocations)


class OnlineTrainer:
    """Serves each namespace's active prior model and retrains one namespace at a time."""

    def __init__(
        self,
        bank: Bank,
        checkpoint_dir: Path | str,
        retrain_every: int,
        keep_checkpoints: int = 5,
        *,
        time_limit: float = TIME_LIMIT,
        rest: float = REST,
        train_config: Any = None,
    ) -> None:
        self.bank = bank
        self.checkpoint_dir = Path(checkpoint_dir)
        self.retrain_every = retrain_every
        self.keep_checkpoints = keep_checkpoints
        self.time_limit = time_limit
        self.rest = rest
        self.train_config = train_config  # in-thread runs only; the subprocess uses defaults
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._running: str | None = None  # the namespace being trained
        self._waiting: dict[str, int] = {}  # labels since that namespace's last run started
        self._rest_until = 0.0  # time.monotonic() before which no run starts
        self._wake: threading.Timer | None = None  # starts a due run when the rest is over
        self._loaded: dict[str, tuple[str, PriorModel | None, str | None]] = {}
        self._last_run: dict[str, dict[str, Any]] = {}
        self._learnt: dict[str, _Learnt] = {}  # what this process has folded in, per namespace
        self._histories: RecentHistories | None = None  # every namespace's: case ids are unique
        self._learnt_lock = threading.Lock()

    # -- serving ---------------------------------------------------------------------------------
    def model(self, namespace: str) -> PriorModel | None:
        """The namespace's active prior model, or None (every prior is then 0.5)."""
        active = self.bank.active_retriever(namespace)
        if active is None:
            return None
        loaded = self._loaded.get(namespace)
        if loaded is None or loaded[0] != active["version"]:
            try:
                model = load_model(serving_path(active["path"]), active["version"])
                loaded = (active["version"], model, None)
            except CheckpointError as exc:
                log.warning("retriever %s failed to load, serving without a prior: %s",
                            active["version"], exc)  # fmt: skip
                loaded = (active["version"], None, str(exc))
            self._loaded[namespace] = loaded  # one assignment: readers see old or new, not half
        return loaded[1]

    def weigh(
        self,
        namespace: str,
        query_vec: np.ndarray,
        case_ids: list[int],
        case_vecs: np.ndarray,
        plan_vecs: np.ndarray,
    ) -> Weighed:
        """What ranking needs to know of the candidates `case_ids`: each one's prior P(help)
        (the active model's, 0.5 without one, moved by what plans like the case's have earned
        lately in this namespace) and its recent outcomes.

        When the bank changed since the last call (Bank.generation), the active model is looked
        up and the showings labelled meanwhile, by any process, are folded in first. Their cases'
        histories are read again; the others come from memory (retriever.histories).
        """
        with self._learnt_lock:
            if self._histories is None:
                in_order = self.bank.outcomes_commit_in_id_order
                self._histories = RecentHistories(plan_vecs.shape[1], None if in_order else MAX_AGE)
            histories = self._histories
            learnt = self._learnt.get(namespace)
            if learnt is None:
                learnt = self._learnt[namespace] = _Learnt(PlanPrior(plan_vecs.shape[1]))
        generation = self.bank.generation()  # before the reads: what they miss moves it
        if generation is None or generation != learnt.generation:
            self._catch_up(namespace, learnt, generation, histories)
        history = histories.get(case_ids, self.bank.case_history)
        with self._learnt_lock:
            model = learnt.model
            base = model.predict(query_vec, case_vecs, plan_vecs) if model else None
            priors = learnt.plans.correct(
                np.full(len(plan_vecs), 0.5) if base is None else base, plan_vecs
            )
        return Weighed(priors, history, model)

    def _catch_up(
        self,
        namespace: str,
        learnt: _Learnt,
        generation: object | None,
        histories: RecentHistories,
    ) -> None:
        """Look up the active model and fold in the showings labelled since the last look. The
        reads run outside the lock, so that a thread waiting on the bank holds up no other
        retrieval (bench/load.py); if another thread folded first, what its reads missed was
        committed after its look at the generation, which has therefore moved again."""
        model, revocations = self.model(namespace), self.bank.revocations()
        with self._learnt_lock:
            if revocations != learnt.revocations:  # labels were taken back: learn again
                learnt.plans = PlanPrior(histories.dimensions)  # from the bank's showings
                histories.clear()
                learnt.revocations = revocations
            plans = learnt.plans
            after = plans.last_id
        new = self.bank.labelled_showings(namespace, after, PLAN_WINDOW)
        with self._learnt_lock:
            if learnt.plans is not plans or plans.last_id != after:
                return
            if len(new):
                base = (model.predict(new.query_vecs, new.case_vecs, new.plan_vecs) if model
                        else np.full(len(new), 0.5))  # fmt: skip
                learnt.plans.fold(new, base)
                if len(new) == PLAN_WINDOW:  # older new showings were cut off: whose, unknown
                    histories.clear()
                histories.forget(new.case_ids.tolist())
            learnt.model, learnt.generation = model, generation

    # -- learning ----------------------------------------------------------------------------------
    def notify_labelled(self, namespace: str, n: int) -> None:
        """Count `n` new labels in `namespace`; start a run when one is due. Never blocks."""
        with self._lock:
            self._waiting[namespace] = self._waiting.get(namespace, 0) + n
            self._maybe_start()

    def _maybe_start(self) -> None:  # caller holds self._lock
        if self._worker is not None:
            return
        due = [ns for ns, n in self._waiting.items() if n >= self.retrain_every]
        if not due:
            return
        resting = self._rest_until - time.monotonic()
        if resting > 0:
            if self._wake is None:
                self._wake = threading.Timer(resting, self._rested)
                self._wake.daemon = True
                self._wake.start()
            return
        namespace = max(due, key=lambda ns: self._waiting[ns])
        self._waiting[namespace] = 0
        self._running = namespace
        self._worker = threading.Thread(
            target=self._run, args=(namespace,), name="memento-retrain", daemon=True
        )
        self._worker.start()

    def _rested(self) -> None:
        with self._lock:
            self._wake = None
            self._maybe_start()

    def _run(self, namespace: str) -> None:
        started = time.monotonic()
        try:
            if _bank_file(self.bank) is not None:
                result = self._run_subprocess(namespace)
            else:
                from retriever.job import run  # imports torch: in-thread runs are for tests

                result = run(self.bank, namespace, self.checkpoint_dir, self.keep_checkpoints,
                             train_config=self.train_config)  # fmt: skip
        except Exception as exc:  # the worker must never take serving down with it
            log.exception("retrain of %s failed; the active version keeps serving", namespace)
            result = {"version": None, "promoted": False, "reason": f"failed: {exc!r}"}
        with self._lock:
            self._last_run[namespace] = result
            self._worker, self._running = None, None
            ended = time.monotonic()
            self._rest_until = ended + self.rest * (ended - started)
            self._maybe_start()  # labels that arrived during the run may already be due

    def _run_subprocess(self, namespace: str) -> dict[str, Any]:
        command = [
            sys.executable, "-m", "retriever.job", "--db", str(_bank_file(self.bank)),
            "--namespace", namespace, "--checkpoint-dir", str(self.checkpoint_dir),
            "--keep", str(self.keep_checkpoints),
        ]  # fmt: skip
        package_root = str(Path(__file__).resolve().parents[1])
        env = os.environ | {
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])),
        }
        url = getattr(self.bank, "url", None)  # a Postgres bank: its URL stays off the command line
        if url:
            env["MEMENTO_DATABASE_URL"] = url
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, env=env, timeout=self.time_limit
            )
        except subprocess.TimeoutExpired:  # run() has killed it
            return {"version": None, "promoted": False,
                    "reason": f"timed out after {self.time_limit:.0f} s"}  # fmt: skip
        if done.returncode != 0:
            tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
            return {"version": None, "promoted": False,
                    "reason": f"failed (exit {done.returncode}): {tail[0]}"}  # fmt: skip
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return result

    def wait_idle(self, timeout: float | None = None) -> None:
        """Block until no run is going (tests and benches); a chained run is waited for too."""
        while True:
            with self._lock:
                worker = self._worker
            if worker is None:
                return
            worker.join(timeout)
            if worker.is_alive():
                raise TimeoutError(f"retrain still running after {timeout} s")

    # -- reporting ----------------------------------------------------------------------------------
    def status(self, namespace: str | None = None) -> dict[str, Any]:
        """What serves each namespace and why (`memento-mcp retriever status`, the dashboard).

        With a namespace, that namespace's entry; without, every namespace this process or the
        bank's versions know, under "namespaces".
        """
        if namespace is not None:
            return self._namespace_status(namespace)
        with self._lock:
            known = set(self._waiting) | set(self._last_run)
        known |= {v["namespace"] for v in self.bank.retriever_versions() if v["namespace"]}
        return {
            "namespaces": {ns: self._namespace_status(ns) for ns in sorted(known)},
            "training": self._running,
            "retrain_every": self.retrain_every,
        }

    def _namespace_status(self, namespace: str) -> dict[str, Any]:
        active = self.bank.active_retriever(namespace)
        model = self.model(namespace)
        if active is None:
            fallback: str | None = "no promoted version yet: prior 0.5, similarity order"
        elif model is None:
            error = self._loaded.get(namespace, ("", None, ""))[2]
            fallback = f"{active['version']} failed to load, serving without a prior ({error})"
        else:
            fallback = None
        with self._lock:
            notified = self._waiting.get(namespace, 0)
            training = self._running == namespace
            last = self._last_run.get(namespace)
        recorded = read_last_run(self.checkpoint_dir, namespace) or {}
        versions = self.bank.retriever_versions(namespace)
        # Labels no version has trained or been valued on, readable from any process.
        seen = max((int(v["metrics"].get("n_labelled", 0)) for v in versions), default=0)
        labelled = self.bank.labelled_count(namespace)
        metrics = active["metrics"] if active else {}
        return {
            "namespace": namespace,
            "model": model.version if model else None,
            "active_version": active["version"] if active else None,
            "fallback": fallback,
            "value": metrics.get("value"),
            "incumbent_value": metrics.get("incumbent_value"),
            "diff": metrics.get("diff"),
            "ci": metrics.get("ci"),
            "incumbent": metrics.get("incumbent"),
            "auc": metrics.get("auc"),
            "labelled": labelled,
            "labels_waiting": max(0, labelled - seen),
            "labels_notified": notified,
            "retrain_every": self.retrain_every,
            "training": training,
            "last_run": last or recorded or None,
            "versions": len(versions),
            "pruned_checkpoints": recorded.get("pruned_total", 0),
        }


def _bank_file(bank: Bank) -> str | None:
    """The bank's database file, or None for a bank without one (in memory)."""
    path = getattr(bank, "path", None)
    return str(path) if path and str(path) != ":memory:" else None
