"""`memento-mcp migrate --to postgresql://...`: a SQLite bank arrives whole, and a re-run adds nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from memento_mcp.casebank import CaseBank, Impression, NewCase, open_bank
from memento_mcp.cli import app

TABLES = ("cases", "embeddings", "plan_embeddings", "requests", "impressions", "outcomes",
          "retriever_versions", "revocations")  # fmt: skip


def fill(path: Path, checkpoints: Path) -> CaseBank:
    """A bank with a bit of everything: pending and answered cases in two namespaces, a deleted
    case, plan vectors, requests with labelled and unlabelled impressions, a promoted version,
    who made each request and reported each outcome (schema v5's client_id), and a revocation."""
    rng = np.random.default_rng(1)
    bank = CaseBank(path)
    ids = []
    for i in range(30):
        case = NewCase(
            "default" if i % 3 else "team",
            f"task {i}",
            f"plan {i}",
            f"answer {i}",
            reward=None if i % 7 == 0 else float(i % 2),
            metadata={"i": i},
            trajectory=[{"step": i}] if i % 5 == 0 else None,
        )
        ids.append(bank.add_case(case, rng.standard_normal(384).astype(np.float32))[0])
    bank.delete_case(ids.pop())  # the highest id: the copy must not hand it out again
    bank.add_plan_vectors(
        {case_id: rng.standard_normal(384).astype(np.float32) for case_id in ids[:10]}
    )
    for r in range(8):
        shown = [Impression(ids[r + j], j + 1, 0.5, 0.4, 0.25) for j in range(3)]
        client = "alice" if r % 3 else None
        bank.log_request(
            f"req{r}", "default", f"query {r}", rng.standard_normal(384), "evidence", shown,
            client_id=client,
        )
        if r % 2 == 0:
            used = [ids[r + 1]] if r else None
            bank.record_outcome(float(r % 4 == 0), f"req{r}", None, used, client)
    free = NewCase("default", "free", "standing", "x", 1.0, client_id="bob")
    bank.record_outcome(1.0, None, (free, np.ones(384)), None, "bob")
    bank.revoke_client("mallory", "2026-01-01T00:00:00")  # taught nothing, but it is on record
    checkpoints.mkdir()
    (checkpoints / "q1.pt").write_bytes(b"torch")
    (checkpoints / "q1.npz").write_bytes(b"serving weights")
    bank.add_retriever_version("q1", str(checkpoints / "q1.pt"), {"auc": 0.7}, "default")
    bank.activate_retriever("q1")
    return bank


def count(bank: CaseBank, table: str) -> int:
    return int(bank._query(f"SELECT count(*) FROM {table}")[0][0])


def test_migrate_copies_every_table_and_a_rerun_adds_nothing(
    tmp_path: Path, postgres_url: str
) -> None:
    source = fill(tmp_path / "bank.db", tmp_path / "ckpt")
    runner = CliRunner()
    args = ["migrate", "--to", postgres_url, "--from", str(tmp_path / "bank.db")]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    target = open_bank(postgres_url)
    assert target._query("SELECT 1 FROM pg_indexes WHERE indexname = 'embeddings_hnsw'")
    for table in TABLES:
        assert count(target, table) == count(source, table), table

    # a sample, field for field: cases, vectors, labels, history, versions with their weights
    sample = [case.case_id for case in source.iter_cases()][::4]
    assert target.cases_by_id(sample) == source.cases_by_id(sample)
    np.testing.assert_array_equal(target.case_vectors(sample), source.case_vectors(sample))
    np.testing.assert_array_equal(target.plan_vectors(sample)[0], source.plan_vectors(sample)[0])
    ours, theirs = source.training_set(), target.training_set()
    np.testing.assert_array_equal(ours.query_vecs, theirs.query_vecs)
    assert ours.request_ids == theirs.request_ids
    np.testing.assert_array_equal(ours.credits, theirs.credits)
    assert source.get_request("req3") == target.get_request("req3")
    provenance = "SELECT id, client_id FROM outcomes ORDER BY id"
    assert source._query(provenance) == target._query(provenance)
    assert target.teachers() == source.teachers()
    assert target.stats()["namespaces"] == source.stats()["namespaces"]
    version = target.active_retriever("default")
    assert version is not None and version["version"] == "q1"
    weights = target._query("SELECT weights FROM retriever_versions WHERE version = 'q1'")
    assert bytes(weights[0][0]) == b"serving weights"
    revoked = "SELECT seq, client_id, since FROM revocations"
    assert target._query(revoked) == source._query(revoked) and target.revocations() == 1

    again = runner.invoke(app, args)  # re-runnable: nothing is added twice
    assert again.exit_code == 0, again.output
    assert ": 0 cases, 0 embeddings, 0 plan_embeddings" in " ".join(again.output.split())
    for table in TABLES:
        assert count(target, table) == count(source, table), table

    # new ids start above every id the SQLite file gave out (the deleted one included)
    highest = int(source._query("SELECT seq FROM sqlite_sequence WHERE name = 'cases'")[0][0])
    new_id, _ = target.add_case(NewCase("default", "after", "the move"), np.ones(384))
    assert new_id > highest
    target.close()
    source.close()


def test_migrate_refuses_a_database_holding_another_bank(tmp_path: Path, postgres_url: str) -> None:
    other = open_bank(postgres_url)
    other.add_case(NewCase("default", "someone else's", "case"), np.ones(384))
    other.close()
    fill(tmp_path / "bank.db", tmp_path / "ckpt").close()
    result = CliRunner().invoke(
        app, ["migrate", "--to", postgres_url, "--from", str(tmp_path / "bank.db")]
    )
    assert result.exit_code == 1
    assert "already holds a different case under case_id 1" in result.output
