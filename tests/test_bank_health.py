"""A damaged bank (issue 12): every command says so in one line, `serve` refuses it, `check`
finds damage and disagreement between the indexes and the cases, `backup` copies consistently.

Banks here are real files written through CaseBank with random unit vectors (no encoder), then
damaged the way the hostile review did: 64 KB of garbage written into the middle of the file.
"""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from memento_mcp.casebank import CaseBank, NewCase, open_bank
from memento_mcp.cli import app
from memento_mcp.errors import DamagedBank, InvalidInput
from memento_mcp.maintenance import backup, check
from memento_mcp.retrieval.index import VectorIndex
from memento_mcp.settings import Settings


def make_bank(home: Path, n: int = 400) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(n, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    bank = CaseBank(home / "memento.db")
    bank.add_cases([
        (NewCase("default", f"task {i} about topic {i % 7}", f"plan {i}", f"answer {i}",
                 float(i % 2), "agent"), vectors[i])
        for i in range(n)
    ])
    bank.close()


def damage(path: Path) -> None:
    """64 KB of garbage in the middle of the file, on a page boundary."""
    size = path.stat().st_size
    with path.open("r+b") as handle:
        handle.seek(size // 2 // 4096 * 4096)
        handle.write(random.Random(12).randbytes(65536))


@pytest.fixture
def damaged_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    make_bank(home)
    damage(home / "memento.db")
    return home


def run(home: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["--home", str(home), *args])
    return result.exit_code, result.output


def test_every_command_on_a_damaged_bank_fails_in_one_line_with_the_fix(
    damaged_home: Path, tmp_path: Path
) -> None:
    source = tmp_path / "one.jsonl"
    source.write_text(json.dumps({"question": "Who wrote Dune?", "plan": "look", "reward": 1}))
    commands = [
        ["stats"], ["stats", "--json"], ["export", str(tmp_path / "out.jsonl")],
        ["export", str(tmp_path / "cases.jsonl"), "-f", "cases", "--with-embeddings"],
        ["retrieve", "task about topic 3"], ["import", str(source)],
    ]
    for command in commands:
        code, output = run(damaged_home, *command)
        assert code == 1, (command, output)
        # import may commit before it reaches the damage; it says so in progress lines
        lines = [line for line in output.strip().splitlines() if not line.startswith("committed")]
        assert len(lines) == 1, (command, output)
        assert "is damaged" in lines[0] and "memento-mcp check" in lines[0], (command, output)


def test_check_finds_the_damage_and_says_how_to_repair(damaged_home: Path) -> None:
    report = check(Settings(home=damaged_home))
    assert not report.ok and report.problems[0].startswith("SQLite integrity_check")
    code, output = run(damaged_home, "check")
    assert code == 1 and "problem" in output and "backup" in output and "import" in output


def test_check_passes_a_sound_bank(tmp_path: Path) -> None:
    make_bank(tmp_path)
    code, output = run(tmp_path, "check")
    assert code == 0, output
    assert output.count("ok ") == 4 and "problem" not in output


def test_check_finds_cases_missing_from_the_full_text_and_vector_indexes(tmp_path: Path) -> None:
    make_bank(tmp_path)
    with sqlite3.connect(tmp_path / "memento.db") as conn:
        conn.execute("DELETE FROM embeddings WHERE case_id IN (5, 6)")
        conn.execute(
            "INSERT INTO cases_fts(cases_fts, rowid, task, plan)"
            " SELECT 'delete', id, task, plan FROM cases WHERE id = 9"
        )
    problems = "\n".join(check(Settings(home=tmp_path)).problems)
    assert "1 case(s) missing from the full-text index" in problems
    assert "2 case(s) without a vector" in problems
    assert "default: 2 case(s) cannot be found" in problems  # by a search, that is
    assert run(tmp_path, "check")[0] == 1


def test_check_finds_text_the_full_text_index_does_not_match(tmp_path: Path) -> None:
    make_bank(tmp_path)
    with sqlite3.connect(tmp_path / "memento.db") as conn:  # behind the triggers' back
        conn.execute("DROP TRIGGER cases_au")
        conn.execute("UPDATE cases SET task = 'something else entirely' WHERE id = 3")
    problems = check(Settings(home=tmp_path)).problems
    assert any("differs from the cases' text" in problem for problem in problems), problems


def test_check_finds_a_damaged_vector_index_file_which_is_then_rebuilt(tmp_path: Path) -> None:
    make_bank(tmp_path, n=60)
    settings = Settings(home=tmp_path, ann_min_cases=20)
    bank = CaseBank(settings.db_path)
    VectorIndex(bank, ann_min_cases=20, background=False).sync()  # writes the HNSW file
    bank.close()
    assert check(settings).ok
    (index_file,) = Path(settings.db_path.as_posix() + ".index").glob("*.usearch")
    damage(index_file)
    problems = check(settings).problems
    assert len(problems) == 1 and "default: index file rejected" in problems[0], problems
    assert check(settings).ok  # the check waited for the rebuild a server would have started


def test_serve_refuses_a_damaged_bank_at_start(damaged_home: Path) -> None:
    process = subprocess.run(
        [sys.executable, "-m", "memento_mcp", "--home", str(damaged_home), "serve"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
    )
    assert process.returncode == 1
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 1 and "refusing to serve" in lines[0], process.stderr
    assert "memento-mcp check" in lines[0] and "backup" in lines[0] and process.stdout == ""


def test_backup_is_a_consistent_copy_while_another_connection_writes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    make_bank(home, n=50)
    writer = sqlite3.connect(home / "memento.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # a server mid-write: its rows are not committed yet
    writer.execute("UPDATE cases SET task = 'half-written' WHERE id = 1")
    dest = tmp_path / "copy.db"
    code, output = run(home, "backup", str(dest))
    writer.execute("COMMIT")
    assert code == 0 and "passes quick_check" in output, output
    restored = tmp_path / "restored"
    restored.mkdir()
    dest.rename(restored / "memento.db")
    bank = CaseBank(restored / "memento.db")
    assert bank.stats()["cases"] == 50 and bank.get_case(1).task == "task 0 about topic 0"
    bank.close()
    assert run(restored, "check")[0] == 0


def test_backup_never_overwrites(tmp_path: Path) -> None:
    make_bank(tmp_path, n=5)
    dest = tmp_path / "taken.db"
    dest.write_text("keep me")
    with pytest.raises(InvalidInput, match="never overwrites"):
        backup(Settings(home=tmp_path), dest)
    code, output = run(tmp_path, "backup", str(dest))
    assert code == 1 and len(output.strip().splitlines()) == 1 and dest.read_text() == "keep me"


def test_a_file_that_is_not_a_bank_is_named_as_damaged(tmp_path: Path) -> None:
    (tmp_path / "memento.db").write_bytes(b"not a database at all" * 1000)
    with pytest.raises(DamagedBank, match="is damaged"):
        CaseBank(tmp_path / "memento.db")
    code, output = run(tmp_path, "stats")
    assert code == 1 and len(output.strip().splitlines()) == 1 and "is damaged" in output


def test_check_and_backup_of_a_postgresql_bank(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL keeps its own pages and indexes sound: check looks at the vectors; backup is
    pg_dump's job, and says so."""
    home = tmp_path / "home"
    monkeypatch.setenv("MEMENTO_HOME", str(home))  # restored after the test, as is the URL
    monkeypatch.setenv("MEMENTO_DATABASE_URL", postgres_url)
    bank = open_bank(postgres_url)
    vector = np.ones(384, dtype=np.float32) / np.sqrt(384)
    first, _ = bank.add_case(NewCase("default", "one", "plan"), vector)
    bank.add_case(NewCase("default", "two", "plan"), vector)
    code, output = run(home, "check")
    assert code == 0 and "ok       every case has its vector" in output
    with bank._write() as db:
        db.execute("DELETE FROM embeddings WHERE case_id = ?", (first,))
    bank.close()
    code, output = run(home, "check")
    assert code == 1 and "1 case(s) without a vector" in output
    code, output = run(home, "backup", str(tmp_path / "copy.db"))
    assert code == 1 and "pg_dump" in output and not (tmp_path / "copy.db").exists()
