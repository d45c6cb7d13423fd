"""Online learning: retrain the head in the background as outcomes arrive, promote only if no worse.

`record_outcome` calls `notify_labelled(n)`; after every `retrain_every` new labels one daemon
thread (never two) reads `bank.training_set()`, trains a head on the frozen vectors, evaluates it
on the held-out slice (split by request), evaluates the serving version on the *same* rows (cosine
at cold start), and promotes the new version only if its AUC is no lower (within one standard
error of the measurement: see `retrain`). Every trained version
is kept (checkpoint file + metrics row), promoted or not. Whatever goes wrong in that thread is
logged and the active version keeps serving.

`scorer()` is what retrieval calls on every request: it asks the bank which version is active (a
one-row query, so a promotion or rollback by another process is seen on the next request), and
loads that checkpoint once. A checkpoint that fails to load means cosine, with the reason in
`status()`.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from retriever.bank import Bank
from retriever.checkpoint import (
    CheckpointError,
    load_head,
    new_version,
    save_checkpoint,
    should_promote,
)
from retriever.data import as_training_set, data_hash, held_out_mask
from retriever.evaluate import auc, auc_standard_error, cosine_scores, evaluate, predict
from retriever.model import ScorerConfig
from retriever.scorer import HeadScorer, Scorer
from retriever.train import TrainConfig, train_head

log = logging.getLogger(__name__)

MIN_TRAIN_ROWS = 20
HELD_OUT_FRACTION = 0.2
DEFAULT_SCORER = ScorerConfig()  # offline, Memento pairs
ONLINE_SCORER = ScorerConfig(min_cos_weight=6.0)  # ranking one query's candidates: see QScorer


def retrain(
    bank: Bank,
    checkpoint_dir: Path,
    data: Any,
    *,
    train_config: TrainConfig | None = None,
    scorer_config: ScorerConfig | None = None,
    held_out_fraction: float = HELD_OUT_FRACTION,
    tolerance: float = 0.0,
) -> dict[str, Any]:
    """Train, evaluate against the incumbent on the same held-out rows, save, register, maybe promote.

    "No worse" is strict by default (`tolerance` 0). The held-out AUC's standard error is stored
    beside it (`auc_se`): early on it is about 0.1, so early promotions are partly luck. Allowing
    one standard error promoted heads trained on 25 rows and did worse in the bench (cumulative
    regret over 500 outcomes 254 and 223 against 167 and 224 strict, seeds 0 and 1).

    Returns the run's record: version (None when nothing was trained), promoted, reason, metrics.
    """
    data = as_training_set(data)  # the bank's own TrainingSet class, same fields
    held = held_out_mask(data.request_ids, held_out_fraction)
    train, test = data.take(~held), data.take(held)
    if len(train) < MIN_TRAIN_ROWS or len(test) == 0:
        reason = f"too little data: {len(train)} training rows, {len(test)} held-out rows"
        return {"version": None, "promoted": False, "reason": reason, "metrics": {}}
    if auc(test.rewards, cosine_scores(test)) is None:
        reason = "held-out slice has a single class; waiting for more varied outcomes"
        return {"version": None, "promoted": False, "reason": reason, "metrics": {}}

    scorer_config = scorer_config or replace(ONLINE_SCORER, embed_dim=data.query_vecs.shape[1])
    model, summary = train_head(train, train_config, scorer_config)
    metrics: dict[str, Any] = evaluate(model, test)

    incumbent = bank.active_retriever()
    incumbent_auc, incumbent_name = metrics["baseline_cosine_auc"], "cosine"
    if incumbent is not None:
        try:
            old, _ = load_head(Path(incumbent["path"]))
            incumbent_auc, incumbent_name = (
                auc(test.rewards, predict(old, test)),
                incumbent["version"],
            )
        except CheckpointError as exc:  # a broken incumbent serves cosine, so cosine is the bar
            log.warning(
                "incumbent %s unreadable, gating against cosine: %s", incumbent["version"], exc
            )
    if metrics["auc"] is not None:
        metrics["auc_se"] = auc_standard_error(metrics["auc"], test.rewards)
    promote, reason = should_promote(metrics["auc"], incumbent_auc, tolerance)

    version = new_version()
    metrics.update(
        incumbent=incumbent_name,
        incumbent_auc=incumbent_auc,
        promoted=promote,
        gate=reason,
        data_hash=data_hash(data),
        n_train=summary["n_train"],
        train_seconds=round(summary["seconds"], 3),
        steps=summary["steps"],
    )
    path = save_checkpoint(
        checkpoint_dir / f"{version}.pt",
        model,
        scorer_config,
        version=version,
        metrics=metrics,
        data_hash=metrics["data_hash"],
        step=summary["steps"],
    )
    bank.add_retriever_version(version, str(path), metrics)
    if promote:
        bank.activate_retriever(version)
    log.info("retriever %s %s (%s)", version, "promoted" if promote else "kept inactive", reason)
    return {"version": version, "promoted": promote, "reason": reason, "metrics": metrics}


class OnlineTrainer:
    """Serves the active head and retrains it in one background thread; see the module docstring."""

    def __init__(
        self,
        bank: Bank,
        checkpoint_dir: Path,
        retrain_every: int,
        *,
        namespace: str | None = None,
        train_config: TrainConfig | None = None,
        scorer_config: ScorerConfig | None = None,
    ) -> None:
        self.bank = bank
        self.checkpoint_dir = Path(checkpoint_dir)
        self.retrain_every = retrain_every
        self.namespace = namespace
        self.train_config = train_config
        self.scorer_config = scorer_config
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._waiting = 0  # labels since the last retrain started
        self._loaded: tuple[str, HeadScorer | None, str | None] | None = (
            None  # version, scorer, error
        )
        self._last_run: dict[str, Any] | None = None

    # -- serving ---------------------------------------------------------------------------------
    def scorer(self) -> Scorer | None:
        """The active version's scorer, or None (retrieval then ranks by cosine)."""
        active = self.bank.active_retriever()
        if active is None:
            return None
        loaded = self._loaded
        if loaded is None or loaded[0] != active["version"]:
            try:
                model, _ = load_head(Path(active["path"]))
                loaded = (active["version"], HeadScorer(model, active["version"]), None)
            except CheckpointError as exc:
                log.warning(
                    "retriever %s failed to load, ranking by cosine: %s", active["version"], exc
                )
                loaded = (active["version"], None, str(exc))
            self._loaded = (
                loaded  # one assignment: readers see the old or the new tuple, never half
            )
        return loaded[1]

    # -- learning ----------------------------------------------------------------------------------
    def notify_labelled(self, n: int) -> None:
        """Count `n` new labels; start a background retrain when enough have arrived. Never blocks."""
        with self._lock:
            self._waiting += n
            self._maybe_start()

    def _maybe_start(self) -> None:  # caller holds self._lock
        if self._waiting < self.retrain_every or (
            self._thread is not None and self._thread.is_alive()
        ):
            return
        self._waiting = 0
        self._thread = threading.Thread(target=self._run, name="memento-retrain", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            data = as_training_set(self.bank.training_set(self.namespace))
            result = retrain(
                self.bank,
                self.checkpoint_dir,
                data,
                train_config=self.train_config,
                scorer_config=self.scorer_config,
            )
        except Exception as exc:  # the thread must never take serving down with it
            log.exception("background retrain failed; the active version keeps serving")
            result = {
                "version": None,
                "promoted": False,
                "reason": f"failed: {exc!r}",
                "metrics": {},
            }
        with self._lock:
            self._last_run = result
            self._thread = None
            self._maybe_start()  # labels that arrived during the run may already be due

    def wait_idle(self, timeout: float | None = None) -> None:
        """Block until no retrain is running (tests and benches); a chained retrain is waited for too."""
        while True:
            with self._lock:
                thread = self._thread
            if thread is None:
                return
            thread.join(timeout)
            if thread.is_alive():
                raise TimeoutError(f"retrain still running after {timeout} s")

    def status(self) -> dict[str, Any]:
        """What serves and why; shown by `memento-mcp retriever status`."""
        active = self.bank.active_retriever()
        scorer = self.scorer()
        if active is None:
            fallback: str | None = "no trained version yet: ranking by cosine similarity"
        elif scorer is None:
            fallback = f"checkpoint of {active['version']} failed to load: ranking by cosine ({self._loaded[2] if self._loaded else ''})"
        else:
            fallback = None
        with self._lock:
            training = self._thread is not None
            waiting, last = self._waiting, self._last_run
        labelled = self.bank.labelled_count(self.namespace)
        # Labels no version has seen, readable from any process (the counter above is this one's).
        versions = self.bank.retriever_versions()
        latest = max(versions, key=lambda v: v["created_at"])["metrics"] if versions else {}
        seen = int(latest.get("n_train", 0)) + int(latest.get("n", 0))
        return {
            "scorer": scorer.version if scorer else "cosine",
            "active_version": active["version"] if active else None,
            "active_metrics": active["metrics"] if active else None,
            "fallback": fallback,
            "labelled": labelled,
            "labels_since_last_training": max(0, labelled - seen),
            "labels_waiting": waiting,
            "retrain_every": self.retrain_every,
            "training": training,
            "last_run": last,
        }
