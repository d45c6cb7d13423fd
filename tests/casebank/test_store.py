"""The storage layer: schema versions, atomic writes, and what delete removes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from memento_mcp.casebank import CaseBank, Impression, NewCase
from memento_mcp.casebank.schema import SCHEMA_VERSION
from memento_mcp.errors import Conflict, StorageError

VECTOR = np.ones(384, dtype=np.float32) / np.sqrt(384)


def test_new_bank_is_wal_and_at_the_current_schema(tmp_path: Path) -> None:
    bank = CaseBank(tmp_path / "bank.db")
    assert bank.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert bank.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    bank.add_case(NewCase("default", "task", "plan", reward=1.0), VECTOR)
    bank.close()
    reopened = CaseBank(tmp_path / "bank.db")  # migrating again is a no-op
    assert reopened.stats()["cases"] == 1


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


def test_a_failed_outcome_writes_nothing(tmp_path: Path) -> None:
    bank = CaseBank(tmp_path / "bank.db")
    (case_id, _), = bank.add_cases([(NewCase("default", "shown", "plan", reward=1.0), VECTOR)])
    bank.log_request("r1", "default", "query", VECTOR, "cosine", [Impression(case_id, 1, 0.9, 0.9)])
    bank.record_outcome(1.0, "r1", None, None)
    new_case = (NewCase("default", "would be new", "plan", reward=0.0), VECTOR)
    with pytest.raises(Conflict):
        bank.record_outcome(0.0, "r1", new_case, None)
    assert bank.stats()["cases"] == 1
    assert bank.training_set().rewards.tolist() == [1.0]


def test_delete_removes_embedding_and_impressions(tmp_path: Path) -> None:
    bank = CaseBank(tmp_path / "bank.db")
    (case_id, _), = bank.add_cases([(NewCase("default", "task", "plan", reward=1.0), VECTOR)])
    bank.log_request("r1", "default", "query", VECTOR, "cosine", [Impression(case_id, 1, 0.9, 0.9)])
    bank.delete_case(case_id)
    for table in ("cases", "embeddings", "impressions"):
        assert bank.db[table].count == 0


def test_outcomes_credit_the_shown_cases_and_become_their_history(tmp_path: Path) -> None:
    bank = CaseBank(tmp_path / "bank.db")
    (first, _), (second, _) = bank.add_cases(
        [(NewCase("default", f"task {i}", "plan", reward=1.0), VECTOR) for i in range(2)]
    )
    shown = [Impression(first, 1, 0.5, 0.5), Impression(second, 2, 0.5, 0.5)]
    bank.log_request("r1", "default", "q", VECTOR, "evidence", shown)
    bank.record_outcome(1.0, "r1", None, [second])  # the agent names what it used
    bank.log_request("r2", "default", "q", VECTOR, "evidence", shown)
    bank.record_outcome(0.0, "r2", None, None)  # no names: shares by 1/rank⁴, 16/17 and 1/17
    history = bank.case_history([first, second])
    assert history.owner.tolist() == [0, 1, 1]  # first's one showing, then second's, newest first
    assert history.rewards.tolist() == [0.0, 0.0, 1.0]
    assert history.credits.tolist() == pytest.approx([16 / 17, 1 / 17, 1.0])
    assert sorted(bank.training_set().credits.tolist()) == pytest.approx([1 / 17, 16 / 17, 1.0])
    bank.delete_case(second)
    assert bank.case_history([first, second]).owner.tolist() == [0]
