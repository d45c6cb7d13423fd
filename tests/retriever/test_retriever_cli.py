"""`memento-mcp retriever ...` and the training subprocess on a real SQLite bank.

Synthetic vectors, plans embedded beforehand: no encoder unless a test leaves plans to embed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from memento_mcp.casebank import CaseBank, Impression, NewCase, open_bank
from retriever.cli import app

ANCHOR = Path(__file__).resolve().parents[3] / "shared" / "anchors" / "memento-data" / "training_data.jsonl"  # fmt: skip
runner = CliRunner()
DIM = 384


def fill_sqlite_bank(
    path: Path | str, n_requests: int = 300, n_cases: int = 40, seed: int = 0,
    leave_unembedded: int = 0,
) -> CaseBank:
    """On-topic cases whose plan decides the outcome (first coordinate > 0: 0.9, else 0.1);
    each request shows 4 uniformly at random (propensity 0.1) and each shown case is labelled."""
    rng = np.random.default_rng(seed)
    bank = open_bank(path)  # a SQLite file, or a Postgres URL (test_online_postgres.py)
    topic = np.eye(DIM, dtype=np.float32)[1]

    def on_topic(n: int) -> np.ndarray:
        v = topic + 0.03 * rng.normal(size=(n, DIM)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    tasks, plans = on_topic(n_cases), rng.normal(size=(n_cases, DIM)).astype(np.float32)
    plans /= np.linalg.norm(plans, axis=1, keepdims=True)
    ids = [
        bank.add_case(NewCase("default", f"task {i}", f"plan {i}", reward=1.0), v)[0]
        for i, v in enumerate(tasks)
    ]
    bank.add_plan_vectors(dict(zip(ids[leave_unembedded:], plans[leave_unembedded:], strict=True)))
    for r in range(n_requests):
        shown = rng.choice(n_cases, size=4, replace=False)
        impressions = [
            Impression(ids[i], rank, 0.0, 0.0, 4 / n_cases,
                       float(rng.random() < (0.9 if plans[i, 0] > 0 else 0.1)))
            for rank, i in enumerate(shown, 1)
        ]  # fmt: skip
        bank.log_request(f"r{r}", "default", f"query {r}", on_topic(1)[0], "cosine", impressions)
    return bank


def invoke(home: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env={"MEMENTO_HOME": str(home)})
    return result.exit_code, result.output


def test_status_and_rollback_at_cold_start(tmp_path: Path) -> None:
    code, out = invoke(tmp_path, "status", "--namespace", "default", "--json")
    assert code == 0, out
    status = json.loads(out)["default"]
    assert status["model"] is None and "no promoted version" in status["fallback"]
    code, out = invoke(tmp_path, "rollback")
    assert code == 1 and "no active" in out


def test_train_on_bank_promotes_once_then_status(tmp_path: Path) -> None:
    fill_sqlite_bank(tmp_path / "memento.db").close()
    code, out = invoke(tmp_path, "train", "--json")
    assert code == 0, out
    first = json.loads(out)
    assert first["promoted"], first["reason"]
    assert first["value"] > first["incumbent_value"] and first["ci"][0] > 0
    code, out = invoke(tmp_path, "train", "--namespace", "default", "--json")
    second = json.loads(out)
    assert not second["promoted"], second["reason"]  # same data, same seed: not better
    status = json.loads(invoke(tmp_path, "status", "--json")[1])["default"]
    assert status["active_version"] == first["version"] and status["labelled"] == 1200
    assert status["labels_waiting"] == 0 and status["versions"] == 2
    assert status["last_run"]["version"] == second["version"]
    code, out = invoke(tmp_path, "status")
    assert code == 0 and "90% CI" in out and first["version"] in out
    code, out = invoke(tmp_path, "rollback", "--namespace", "default")
    assert code == 1 and "nothing to roll back" in out


SERVER = """
import json, sys
from memento_mcp.casebank import open_bank
from retriever.online import OnlineTrainer
bank = open_bank(sys.argv[1])
trainer = OnlineTrainer(bank, sys.argv[2], retrain_every=100, keep_checkpoints=0)
trainer.notify_labelled("default", 1200)
trainer.wait_idle(timeout=300)
model = trainer.model("default")
print(json.dumps({"status": trainer.status("default"), "torch": "torch" in sys.modules,
                  "model": model.version if model else None}, default=str))
"""


@pytest.mark.slow
def test_online_training_runs_in_a_subprocess_and_embeds_plans(tmp_path: Path) -> None:
    """A server process (here a fresh interpreter) trains, promotes and serves, never loading torch."""
    bank = fill_sqlite_bank(tmp_path / "memento.db", leave_unembedded=2)
    assert len(bank.plans_to_embed()) == 2
    server = subprocess.run(
        [sys.executable, "-c", SERVER, str(tmp_path / "memento.db"), str(tmp_path / "ckpt")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert server.returncode == 0, server.stderr
    out = json.loads(server.stdout.strip().splitlines()[-1])
    last = out["status"]["last_run"]
    assert last["promoted"] and last["plans_embedded"] == 2, last
    assert out["model"] == last["version"] and not out["torch"]
    assert bank.plans_to_embed() == []
    files = sorted(p.suffix for p in (tmp_path / "ckpt").iterdir() if p.suffix != ".json")
    assert files == [".npz", ".pt"]
    bank.close()


@pytest.mark.slow
@pytest.mark.skipif(not ANCHOR.exists(), reason="Memento's training_data.jsonl is not beside the repo")
def test_eval_and_full_train_on_memento_pairs(tmp_path: Path) -> None:
    small = tmp_path / "pairs.jsonl"
    small.write_text("".join(ANCHOR.read_text().splitlines(keepends=True)[: 8 * 60]))
    code, out = invoke(tmp_path, "eval", "--pairs", str(small), "--json")
    assert code == 0, out
    metrics = json.loads(out)
    assert {"auc", "baseline_cosine_auc", "n", "ndcg@4", "precision@4"} <= metrics.keys()
    assert metrics["n_ranking_requests"] == 0  # Memento labels whole queries
    code, out = invoke(tmp_path, "train", "--pairs", str(small), "--mode", "full",
                       "--max-steps", "2", "--batch-size", "4", "--json")  # fmt: skip
    assert code == 0, out
    full = json.loads(out[out.index("{") :])
    assert full["mode"] == "full" and full["steps"] == 2 and Path(full["checkpoint"]).exists()
