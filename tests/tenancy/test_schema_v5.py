"""Schema v5 (provenance) on a bank written by v4: old rows keep no client, new ones name theirs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import sqlite_utils

from memento_mcp.casebank import CaseBank, NewCase
from memento_mcp.casebank.schema import MIGRATIONS, SCHEMA_VERSION

VECTOR = np.ones(384, dtype=np.float32) / np.sqrt(384)


def test_a_v4_bank_upgrades_and_old_outcomes_are_nobodys(tmp_path: Path) -> None:
    path = tmp_path / "memento.db"
    db = sqlite_utils.Database(sqlite3.connect(path))
    for version, step in enumerate(MIGRATIONS[:4], start=1):
        step(db)
        db.execute(f"PRAGMA user_version = {version}")
    db.conn.commit()
    db.close()
    old = CaseBank(path)  # opening migrates v4 -> v5, and on
    assert old.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 6
    case = NewCase("default", "Who wrote Dune?", "Search", "Herbert", 1.0)
    first = old.record_outcome(1.0, None, (case, VECTOR), None)  # no client: as before v5
    assert old.get_case(first.case_id).client_id is None  # type: ignore[arg-type]
    again = old.record_outcome(1.0, None, (case, VECTOR), None)
    assert again.duplicate and again.case_id == first.case_id
    theirs = old.record_outcome(0.0, None, (case, VECTOR), None, "alice")
    assert not theirs.duplicate and theirs.case_reward == 1.0 and theirs.reward == 0.0
    assert {row["client_id"] for row in old.teachers()} == {None, "alice"}
    old.close()
