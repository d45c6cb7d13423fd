"""Memento pairs become a TrainingSet whose plan vectors are the cases' plans."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from retriever.data import load_pairs


def encode_by_length(texts: list[str]) -> np.ndarray:
    """A stand-in encoder whose vector says which text it came from: (N, 1), the text's length."""
    return np.array([[float(len(t))] for t in texts], np.float32)


def test_load_pairs_reads_the_plan_field(tmp_path: Path) -> None:
    rows = [
        {"query": "q", "case": "task", "plan": "a longer plan", "truth_label": True},
        {"query": "q", "case": "another task", "truth_label": True},  # no plan: its task stands in
    ]
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    data, _ = load_pairs(path, encode_by_length)
    assert data.case_vecs[:, 0].tolist() == [len("task"), len("another task")]
    assert data.plan_vecs[:, 0].tolist() == [len("a longer plan"), len("another task")]
