"""Memento's JSONL files go in and come back out byte for byte; bad lines are named, not half-imported.

The tests on `any_memory` run on both banks (SQLite, then PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from memento_mcp import transfer
from memento_mcp.cli import STARTER_BANK
from memento_mcp.errors import InvalidInput
from memento_mcp.memory import Memory


def test_memory_jsonl_round_trips_byte_for_byte_and_reimport_adds_nothing(
    memory: Memory, tmp_path: Path
) -> None:
    report = transfer.import_file(memory, STARTER_BANK)
    assert (report.format, report.added, report.skipped_duplicates) == ("memory", 1278, 0)
    again = transfer.import_file(memory, STARTER_BANK)
    assert (again.added, again.skipped_duplicates) == (0, 1278)
    out = tmp_path / "memory.jsonl"
    assert transfer.export_file(memory, out, "memory") == 1278
    assert out.read_bytes() == STARTER_BANK.read_bytes()


@pytest.mark.slow
def test_training_pairs_round_trip_as_cases_plus_labelled_impressions(
    memory: Memory, anchors: Path, tmp_path: Path
) -> None:
    source = anchors / "training_data.jsonl"
    report = transfer.import_file(memory, source)
    assert report.format == "training_data" and report.impressions == 5528
    assert memory.bank.labelled_count() == 5528
    assert transfer.import_file(memory, source).impressions == 0  # imported requests are not repeated
    out = tmp_path / "training_data.jsonl"
    transfer.export_file(memory, out, "training_data")
    assert out.read_bytes() == source.read_bytes()


def test_dummy_memo_round_trips(memory: Memory, anchors: Path, tmp_path: Path) -> None:
    source = anchors / "dummy_memo.jsonl"
    assert transfer.import_file(memory, source).added == 8
    out = tmp_path / "dummy.jsonl"
    transfer.export_file(memory, out, "dummy_memo")
    assert out.read_text().splitlines() == source.read_text().splitlines()


def test_imported_cases_arrive_with_their_plans_embedded(memory: Memory, anchors: Path) -> None:
    """A server ranks imported cases without encoding their plans on the request path."""
    transfer.import_file(memory, anchors / "dummy_memo.jsonl")
    cases = list(memory.bank.iter_cases())
    vectors, missing = memory.bank.plan_vectors([case.case_id for case in cases])
    assert missing == [] and memory.bank.plans_to_embed() == []
    expected = memory.encoder.encode([case.plan for case in cases])
    np.testing.assert_allclose(vectors, expected, atol=1e-4)


def test_malformed_lines_are_reported_by_number_and_nothing_is_imported(
    any_memory: Memory, tmp_path: Path
) -> None:
    memory = any_memory
    good = {"case": "Who wrote Dune?", "plan": "search", "case_label": "positive"}
    lines = [
        json.dumps(good),
        "{not json",
        json.dumps({**good, "case": "Other", "case_label": "maybe"}),
        json.dumps({**good, "case": "Third"}),
    ]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InvalidInput, match=r"2 bad line\(s\)[\s\S]*line 2:[\s\S]*line 3:"):
        transfer.import_file(memory, path)
    assert memory.bank.stats()["cases"] == 0
    report = transfer.import_file(memory, path, skip_bad=True)
    assert report.added == 2 and len(report.bad_lines) == 2


def test_unknown_layout_is_refused_with_the_expected_keys(memory: Memory, tmp_path: Path) -> None:
    path = tmp_path / "other.jsonl"
    path.write_text(json.dumps({"prompt": "x", "completion": "y"}) + "\n")
    with pytest.raises(InvalidInput, match="expected one of: memory: case, plan, case_label"):
        transfer.import_file(memory, path)


def test_cases_format_keeps_every_field(any_memory: Memory, tmp_path: Path) -> None:
    memory = any_memory
    memory.record_outcome(task="Add 2 and 3", plan="use math", answer="5", reward=0.7,
                          metadata={"agent": "x"})
    out = tmp_path / "cases.jsonl"
    transfer.export_file(memory, out, "cases")
    record = json.loads(out.read_text())
    assert (record["answer"], record["reward"], record["metadata"]) == ("5", 0.7, {"agent": "x"})
    memory.delete_case(1)
    transfer.import_file(memory, out)
    assert [(c.answer, c.reward) for c in memory.bank.iter_cases()] == [("5", 0.7)]
