"""What retrieval reads from the bank (issue 10): lexical (FTS5) matches, ranked on a shortlist
that a small namespace in a big bank does not lose its matches to, and the candidates' vectors;
the candidates and the request log on both banks (their Postgres SQL is its own, issue 11)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from memento_mcp.casebank import CaseBank, Impression, NewCase, open_bank
from memento_mcp.retrieval.index import open_index


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
        " ORDER BY bm25(cases_fts)",
        (f'"{word}"', namespace),
    )
    return [row[0] for row in rows]


def test_a_small_namespace_gets_its_matches_when_the_bank_s_best_are_elsewhere(
    bank: CaseBank,
) -> None:
    # 40 short "big" cases outrank every "small" one on BM25, so the bank's best 10 are all big
    add(bank, "big", [f"zorblat zorblat {i}" for i in range(40)])
    add(bank, "filler", [f"unrelated task number {i}" for i in range(2000)])
    small = add(
        bank, "small", ["a long task that mentions zorblat once" + " more" * i for i in range(3)]
    )
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


@pytest.fixture
def any_bank(bank_location: str | Path) -> Iterator[CaseBank]:
    """A bank of each kind in turn: SQLite, then PostgreSQL (the reads below differ in SQL)."""
    bank = open_bank(bank_location)
    yield bank
    bank.close()


def test_retrieval_candidates_keep_their_order_and_skip_pending_and_missing(
    any_bank: CaseBank,
) -> None:
    done = add(any_bank, "default", ["first task", "second task"])
    pending = add(any_bank, "default", ["pending task"], reward=None)
    ids, vectors = any_bank.labelled_vectors([done[1], pending[0], 10_000, done[0]])
    assert ids == [done[1], done[0]] and vectors.shape == (2, 384)
    assert any_bank.labelled_vectors([pending[0]])[0] == []


def test_candidates_are_the_dense_matches_then_the_others_each_once(any_bank: CaseBank) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(6, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [
        case_id
        for case_id, _ in any_bank.add_cases(
            [(NewCase("default", f"task {i}", "plan", reward=None if i == 1 else 1.0), v)
             for i, v in enumerate(vectors)]
        )
    ]  # fmt: skip
    index = open_index(any_bank)
    query = vectors[0] + 0.9 * vectors[1] + 0.8 * vectors[2]
    nearest, _ = index.search("default", query, 3)
    assert nearest.tolist() == ids[:3]
    found, found_vectors = index.candidates("default", query, 3, [ids[5], ids[2], 99_999, ids[4]])
    assert found == [ids[0], ids[2], ids[5], ids[4]]  # pending ids[1] and the unknown id left out
    np.testing.assert_allclose(found_vectors, vectors[[0, 2, 5, 4]], rtol=1e-6)
    assert index.candidates("elsewhere", query, 3, [])[0] == []


def test_a_namespace_searched_while_empty_finds_a_case_added_after(any_bank: CaseBank) -> None:
    index = open_index(any_bank)
    vector = np.ones(384, dtype=np.float32) / np.sqrt(384)
    assert index.search("fresh", vector, 5)[0].tolist() == []
    (case_id,) = add(any_bank, "fresh", ["the first case of a new namespace"])
    index.invalidate()  # as Memory does after a write
    assert index.search("fresh", vector, 5)[0].tolist() == [case_id]
    assert index.candidates("fresh", vector, 5, [])[0] == [case_id]


def test_the_request_log_keeps_rank_order_and_is_written_once(any_bank: CaseBank) -> None:
    first, second = add(any_bank, "default", ["first task", "second task"])
    vector = np.ones(384, dtype=np.float32) / np.sqrt(384)
    shown = [Impression(second, 1, 0.9, 0.8, 0.5), Impression(first, 2, 0.7, 0.6, 0.25)]
    assert any_bank.log_request("r1", "default", "query", vector, "evidence", shown)
    assert not any_bank.log_request("r1", "default", "again", vector, "evidence", shown[:1])
    rows = any_bank._query(
        "SELECT case_id, rank, score, similarity, propensity, reward, credit FROM impressions"
        " WHERE request_id = ? ORDER BY id",
        ("r1",),
    )
    assert [tuple(row) for row in rows] == [
        (second, 1, 0.9, 0.8, 0.5, None, None),
        (first, 2, 0.7, 0.6, 0.25, None, None),
    ]
    assert any_bank.get_request("r1")["query"] == "query"
    assert any_bank.shown_case_ids("r1") == [second, first]
    labelled = [Impression(first, 1, 0.0, 0.0, 1.0, reward=1.0)]
    assert any_bank.log_request("r2", "default", "imported", vector, "import", labelled, "import")
    assert any_bank.training_set().case_ids.tolist() == [first]


def test_a_retrieval_log_commits_synchronously(postgres_url: str) -> None:
    from memento_mcp.casebank.postgres import PostgresBank

    bank = PostgresBank(postgres_url, pool_size=1)  # one connection: the log's and the next
    bank.log_request("r1", "default", "q", np.zeros(384, np.float32), "evidence", [])
    assert bank._run("SHOW synchronous_commit") == [("on",)]  # outcomes still wait for the disk
    bank.close()
