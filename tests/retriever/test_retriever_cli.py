"""`memento-mcp retriever ...` on a real SQLite bank (synthetic vectors: no encoder unless slow)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from memento_mcp.casebank.store import CaseBank, Impression, NewCase
from retriever.cli import app

ANCHOR = (
    Path(__file__).resolve().parents[3]
    / "shared"
    / "anchors"
    / "memento-data"
    / "training_data.jsonl"
)
runner = CliRunner()


def fill_sqlite_bank(path: Path, n_requests: int = 120, seed: int = 0) -> None:
    """Cases whose first coordinate is positive help; each request shows 4 and labels all."""
    rng = np.random.default_rng(seed)
    bank = CaseBank(path)
    vecs = rng.normal(size=(12, 384)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    ids = [
        bank.add_case(NewCase("default", f"case {i}", "plan", reward=1.0), v)[0]
        for i, v in enumerate(vecs)
    ]
    for r in range(n_requests):
        q = rng.normal(size=384).astype(np.float32)
        shown = rng.choice(12, size=4, replace=False)
        impressions = [
            Impression(
                ids[i], rank, 0.0, 0.0, 1.0, float(rng.random() < (0.9 if vecs[i, 0] > 0 else 0.1))
            )
            for rank, i in enumerate(shown, 1)
        ]
        bank.log_request(
            f"r{r}", "default", f"query {r}", q / np.linalg.norm(q), "cosine", impressions
        )
    bank.close()


def invoke(home: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env={"MEMENTO_HOME": str(home)})
    return result.exit_code, result.output


def test_status_and_rollback_at_cold_start(tmp_path: Path) -> None:
    code, out = invoke(tmp_path, "status", "--json")
    assert code == 0, out
    status = json.loads(out)
    assert status["scorer"] == "cosine" and "no trained version" in status["fallback"]
    code, out = invoke(tmp_path, "rollback")
    assert code == 1 and "no active" in out


def test_train_on_bank_promotes_then_rollback(tmp_path: Path) -> None:
    fill_sqlite_bank(tmp_path / "memento.db")
    code, out = invoke(tmp_path, "train", "--json")
    assert code == 0, out
    first = json.loads(out)
    assert first["promoted"], first["reason"]
    assert first["auc"] > first["baseline_cosine_auc"]
    code, out = invoke(tmp_path, "train", "--json")
    second = json.loads(out)
    assert second["promoted"], second["reason"]  # same data, same seed: no worse
    status = json.loads(invoke(tmp_path, "status", "--json")[1])
    assert status["active_version"] == second["version"] and status["labelled"] == 480
    assert status["labels_since_last_training"] == 0
    assert len(status["versions"]) == 2
    code, out = invoke(tmp_path, "rollback")
    assert code == 0 and first["version"] in out
    assert json.loads(invoke(tmp_path, "status", "--json")[1])["scorer"] == first["version"]


@pytest.mark.slow
@pytest.mark.skipif(
    not ANCHOR.exists(), reason="Memento's training_data.jsonl is not laid beside the repo"
)
def test_eval_and_full_train_on_memento_pairs(tmp_path: Path) -> None:
    small = tmp_path / "pairs.jsonl"
    small.write_text("".join(ANCHOR.read_text().splitlines(keepends=True)[: 8 * 60]))
    code, out = invoke(tmp_path, "eval", "--pairs", str(small), "--json")
    assert code == 0, out
    metrics = json.loads(out)
    assert {"auc", "baseline_cosine_auc", "n", "ndcg@4", "precision@4"} <= metrics.keys()
    assert metrics["n_ranking_requests"] == 0  # Memento labels whole queries
    code, out = invoke(
        tmp_path,
        "train",
        "--pairs",
        str(small),
        "--mode",
        "full",
        "--max-steps",
        "2",
        "--batch-size",
        "4",
        "--json",
    )
    assert code == 0, out
    full = json.loads(out[out.index("{") :])
    assert full["mode"] == "full" and full["steps"] == 2 and Path(full["checkpoint"]).exists()
