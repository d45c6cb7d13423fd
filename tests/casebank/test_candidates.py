"""What retrieval reads from the bank (issue 10): lexical (FTS5) matches, ranked on a shortlist
that a small namespace in a big bank does not lose its matches to, and the candidates' vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from memento_mcp.casebank import CaseBank, NewCase


@pytest.fixture
def bank(tmp_path: Path) -> CaseBank:
    return CaseBank(tmp_path / "memento.db")


def add(bank: CaseBank, namespace: str, tasks: list[str], reward: float | None = 1.0) -> list[int]:
    vector = np.ones(384, dtype=np.float32) / np.sqrt(384)
    cases = [(NewCase(namespace, task, "plan", reward=reward), vector) for task in tasks]
    return [case_id for case_id, _ in bank.add_cases(cases)]


def every_match(bank: CaseBank, namespace: str, word: str) -> list[int]:
    """The namespace's matches in BM25 order, ranked over all of them."""
    rows = bank._query(
        "SELECT cases.id FROM cases_fts JOIN cases ON cases.id = cases_fts.rowid"
        " WHERE cases_fts MATCH ? AND cases.namespace = ? AND cases.reward IS NOT NULL"
        " ORDER BY bm25(cases_fts)", (f'"{word}"', namespace),
    )
    return [row[0] for row in rows]


def test_a_small_namespace_gets_its_matches_when_the_bank_s_best_are_elsewhere(
    bank: CaseBank,
) -> None:
    # 40 short "big" cases outrank every "small" one on BM25, so the bank's best 10 are all big
    add(bank, "big", [f"zorblat zorblat {i}" for i in range(40)])
    add(bank, "filler", [f"unrelated task number {i}" for i in range(2000)])
    small = add(bank, "small", ["a long task that mentions zorblat once" + " more" * i
                                for i in range(3)])
    found = [case_id for case_id, _ in bank.lexical_search("small", "zorblat", 5)]
    assert sorted(found) == small
    assert found == every_match(bank, "small", "zorblat")[:5]


def test_the_shortlist_gives_the_order_of_ranking_every_match(bank: CaseBank) -> None:
    add(bank, "default", ["quux task" + " word" * i for i in range(30)])  # no two score alike
    add(bank, "default", [f"other task {i}" for i in range(3000)])
    add(bank, "default", ["quux pending"], reward=None)  # pending cases are never returned
    found = [case_id for case_id, _ in bank.lexical_search("default", "quux", 5)]
    assert len(found) == 5
    best = every_match(bank, "default", "quux")
    assert found == best[:5]
    scores = [score for _, score in bank.lexical_search("default", "quux", 5)]
    assert scores == sorted(scores, reverse=True) and min(scores) >= 0


def test_retrieval_candidates_keep_their_order_and_skip_pending_and_missing(bank: CaseBank) -> None:
    done = add(bank, "default", ["first task", "second task"])
    pending = add(bank, "default", ["pending task"], reward=None)
    ids, vectors = bank.labelled_vectors([done[1], pending[0], 10_000, done[0]])
    assert ids == [done[1], done[0]] and vectors.shape == (2, 384)
    assert bank.labelled_vectors([pending[0]])[0] == []
