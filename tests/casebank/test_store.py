"""The storage layer: schema versions, atomic writes, and what delete removes, on both banks."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from memento_mcp.casebank import CaseBank, Impression, NewCase, content_hash, open_bank
from memento_mcp.casebank.schema import SCHEMA_VERSION
from memento_mcp.errors import Conflict, StorageError

VECTOR = np.ones(384, dtype=np.float32) / np.sqrt(384)


def rows(bank: CaseBank, table: str) -> int:
    return int(bank._query(f"SELECT count(*) FROM {table}")[0][0])


def test_new_bank_is_wal_and_at_the_current_schema(tmp_path: Path) -> None:
    bank = CaseBank(tmp_path / "bank.db")
    assert bank.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert bank.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    bank.add_case(NewCase("default", "task", "plan", reward=1.0), VECTOR)
    bank.close()
    reopened = CaseBank(tmp_path / "bank.db")  # migrating again is a no-op
    assert reopened.stats()["cases"] == 1


def test_reopening_a_bank_keeps_its_cases(bank_location: str | Path) -> None:
    bank = open_bank(bank_location)
    bank.add_case(NewCase("default", "task", "plan", reward=1.0), VECTOR)
    bank.close()
    reopened = open_bank(bank_location)  # migrating again is a no-op
    assert reopened.stats()["cases"] == 1
    reopened.close()


def test_a_bank_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bank.db"
    CaseBank(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StorageError, match="newer than this memento-mcp understands"):
        CaseBank(path)


def test_an_unwritable_data_directory_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StorageError, match="cannot open the case bank"):
        CaseBank(blocker / "home" / "bank.db")


def test_a_failed_outcome_writes_nothing(bank_location: str | Path) -> None:
    bank = open_bank(bank_location)
    (case_id, _), = bank.add_cases([(NewCase("default", "shown", "plan", reward=1.0), VECTOR)])
    bank.log_request("r1", "default", "query", VECTOR, "cosine", [Impression(case_id, 1, 0.9, 0.9)])
    bank.record_outcome(1.0, "r1", None, None)
    new_case = (NewCase("default", "would be new", "plan", reward=0.0), VECTOR)
    with pytest.raises(Conflict):
        bank.record_outcome(0.0, "r1", new_case, None)
    assert bank.stats()["cases"] == 1
    assert bank.training_set().rewards.tolist() == [1.0]
    bank.close()


def test_delete_removes_embedding_and_impressions(bank_location: str | Path) -> None:
    bank = open_bank(bank_location)
    (case_id, _), = bank.add_cases([(NewCase("default", "task", "plan", reward=1.0), VECTOR)])
    bank.log_request("r1", "default", "query", VECTOR, "cosine", [Impression(case_id, 1, 0.9, 0.9)])
    bank.add_plan_vectors({case_id: VECTOR})
    bank.delete_case(case_id)
    for table in ("cases", "embeddings", "plan_embeddings", "impressions"):
        assert rows(bank, table) == 0
    bank.close()


def test_outcomes_credit_the_shown_cases_and_become_their_history(
    bank_location: str | Path,
) -> None:
    bank = open_bank(bank_location)
    (first, _), (second, _) = bank.add_cases(
        [(NewCase("default", f"task {i}", "plan", reward=1.0), VECTOR) for i in range(2)]
    )
    shown = [Impression(first, 1, 0.5, 0.5), Impression(second, 2, 0.5, 0.5)]
    bank.log_request("r1", "default", "q", VECTOR, "evidence", shown)
    bank.record_outcome(1.0, "r1", None, [second])  # the agent names what it used
    bank.log_request("r2", "default", "q", VECTOR, "evidence", shown)
    bank.record_outcome(0.0, "r2", None, None)  # no names: shares by 1/rank⁴, 16/17 and 1/17
    history = bank.case_history([first, second])
    assert history.owner.tolist() == [0, 1]  # first's one showing, then second's, newest first
    assert history.rewards.tolist() == [0.0, 1.0]  # 1/17 < MIN_CREDIT: trains, is no evidence
    assert history.credits.tolist() == pytest.approx([16 / 17, 1.0])
    assert sorted(bank.training_set().credits.tolist()) == pytest.approx([1 / 17, 16 / 17, 1.0])
    bank.delete_case(second)
    assert bank.case_history([first, second]).owner.tolist() == [0]
    bank.close()


def test_the_generation_moves_with_outcomes_and_other_writers_not_with_retrieval_logs(
    tmp_path: Path,
) -> None:
    """The learner skips its reads while the generation stays put, so everything it reads must
    move it: this connection's outcomes and any commit by another connection."""
    bank, other = CaseBank(tmp_path / "bank.db"), CaseBank(tmp_path / "bank.db")
    (case, _), = bank.add_cases([(NewCase("default", "task", "plan", reward=1.0), VECTOR)])
    before = bank.generation()
    bank.log_request("r1", "default", "q", VECTOR, "evidence", [Impression(case, 1, 0.5, 0.5)])
    assert bank.generation() == before
    bank.record_outcome(1.0, "r1", None, None)
    labelled = bank.generation()
    assert labelled != before
    other.log_request("r2", "default", "q", VECTOR, "evidence", [Impression(case, 1, 0.5, 0.5)])
    bank.data_version()  # as the vector index reads it on every retrieval
    assert bank.generation() != labelled
    bank.close()
    other.close()


def test_a_duplicate_case_is_stored_once_and_its_id_returned(bank_location: str | Path) -> None:
    bank = open_bank(bank_location)
    case = NewCase("default", "task", "plan", "answer", reward=1.0)
    first, created = bank.add_case(case, VECTOR)
    assert created
    assert bank.add_case(case, VECTOR) == (first, False)
    digest = content_hash("task", "plan", "answer")
    assert bank.existing_cases("default", [digest, "unknown"]) == {digest: first}
    assert bank.get_case(first).task == "task"
    bank.close()


def test_vectors_come_back_as_they_went_in(bank_location: str | Path) -> None:
    bank = open_bank(bank_location)
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((3, 384)).astype(np.float32)
    ids = [bank.add_case(NewCase("default", f"t{i}", "p"), v)[0] for i, v in enumerate(vectors)]
    bank.add_plan_vectors({ids[0]: vectors[2]})
    np.testing.assert_array_equal(bank.case_vectors(ids), vectors)
    plans, unembedded = bank.plan_vectors(ids[:2])
    np.testing.assert_array_equal(plans, vectors[[2, 1]])  # the task's stands in for a missing plan
    assert unembedded == [ids[1]]
    bank.close()


def test_retriever_versions_swap_in_one_step(bank_location: str | Path, tmp_path: Path) -> None:
    bank = open_bank(bank_location)
    for version in ("v1", "v2"):
        bank.add_retriever_version(version, str(tmp_path / f"{version}.pt"), {"auc": 0.5}, "ns")
    bank.activate_retriever("v1")
    bank.activate_retriever("v2")
    active = bank.active_retriever("ns")
    assert active is not None and active["version"] == "v2"
    assert [v["active"] for v in bank.retriever_versions("ns")] == [False, True]
    assert bank.active_retriever("other") is None
    bank.delete_retriever_version("v1")
    assert [v["version"] for v in bank.retriever_versions()] == ["v2"]
    bank.close()


def test_reports_have_the_same_shape_on_both_banks(bank_location: str | Path) -> None:
    bank = open_bank(bank_location)
    (case_id, _), = bank.add_cases([(NewCase("default", "Dune is a novel", "read", reward=1.0), VECTOR)])
    bank.add_case(NewCase("other", "pending task", "plan"), VECTOR)
    bank.log_request("r1", "default", "q", VECTOR, "cosine", [Impression(case_id, 1, 0.9, 0.9)])
    bank.record_outcome(0.0, "r1", None, None)
    stats = bank.stats()
    assert (stats["cases"], stats["requests"], stats["labelled_impressions"]) == (2, 1, 1)
    assert stats["namespaces"][0] == {
        "namespace": "default", "cases": 1, "positive": 1, "negative": 0, "pending": 0
    }
    found, total = bank.list_cases(search="dun")
    assert total == 1 and found[0].case_id == case_id
    assert bank.list_cases(label="pending")[1] == 1
    day = bank.outcomes_by_day("default")
    assert len(day) == 1 and (day[0]["outcomes"], day[0]["positive"]) == (1, 0)
    assert bank.reward_curve() == [{"outcomes": 1, "mean_reward": 0.0}]
    bank.close()
