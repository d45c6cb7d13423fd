"""Kept histories read like the bank's, and are read again once their case is labelled."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from retriever import histories
from retriever.bank import InMemoryBank
from retriever.contract import History
from retriever.histories import RecentHistories

FillBank = Callable[..., None]


def same(a: History, b: History) -> bool:
    """Equal, but for the query vectors: kept in 8 bits, each component within half a step
    (a 254th of the row's largest one). The kept change steps are the ones computed afresh."""
    step = np.abs(b.queries).max(axis=1, keepdims=True, initial=0.0) / 254 + 1e-7
    return a.queries.dtype == b.queries.dtype and bool(
        (np.abs(a.queries - b.queries) <= step).all()
    ) and all(np.array_equal(x, y) for x, y in zip(
        (a.owner, a.rewards, a.credits, a.ids, a.steps),
        (b.owner, b.rewards, b.credits, b.ids, b.steps), strict=True))  # fmt: skip


def counting(bank: InMemoryBank, reads: list[list[int]]) -> Callable[[list[int]], History]:
    def read(case_ids: list[int]) -> History:
        reads.append(list(case_ids))
        return bank.case_history(case_ids)

    return read


def filled(
    bank: InMemoryBank, fill_bank: FillBank, outcomes: int, n_cases: int, **options: float
) -> tuple[list[int], RecentHistories, list[list[int]]]:
    """A bank with outcomes for its cases: (their ids, an empty cache, its reads so far)."""
    fill_bank(bank, outcomes, n_cases=n_cases)
    ids = [int(i) for i in bank.namespace_vectors("default")[0]]
    return ids, RecentHistories(bank.dim, **options), []


def test_kept_histories_equal_the_banks_and_only_labelled_cases_are_read_again(
    bank: InMemoryBank, fill_bank: FillBank
) -> None:
    ids, kept, reads = filled(bank, fill_bank, 40, 12)
    read = counting(bank, reads)
    assert same(kept.get(ids[:5], read), bank.case_history(ids[:5]))
    assert same(kept.get(ids[3:9], read), bank.case_history(ids[3:9]))
    assert reads == [ids[:5], ids[5:9]]  # the kept ones were not read again
    fill_bank(bank, 10, seed=1)  # new outcomes, for some of the cases
    labelled = bank.labelled_showings("default", 0, 10**6).case_ids[-40:].tolist()
    kept.forget(labelled)
    assert same(kept.get(ids, read), bank.case_history(ids))


def test_where_outcomes_can_commit_out_of_order_a_history_is_read_again_once_it_is_old(
    bank: InMemoryBank, fill_bank: FillBank
) -> None:
    ids, kept, reads = filled(bank, fill_bank, 20, 6, max_age=0.0)
    kept.get(ids, counting(bank, reads))
    kept.get(ids, counting(bank, reads))
    assert reads == [ids, ids]


def test_a_full_cache_starts_again_and_still_answers_every_case(
    bank: InMemoryBank, fill_bank: FillBank, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(histories, "MAX_CASES", 8)
    ids, kept, reads = filled(bank, fill_bank, 30, 12)
    kept.get(ids[:6], counting(bank, reads))
    assert same(kept.get(ids[4:10], counting(bank, reads)), bank.case_history(ids[4:10]))
    assert reads[-1] == ids[4:10]


def test_a_history_read_while_its_case_was_labelled_is_not_kept(
    bank: InMemoryBank, fill_bank: FillBank
) -> None:
    """Another thread folds an outcome in while this one reads: what it read may predate the
    outcome, so it serves this retrieval only and the next one reads again."""
    ids, kept, reads = filled(bank, fill_bank, 20, 6)

    def read_while_labelled(case_ids: list[int]) -> History:
        reads.append(list(case_ids))
        history = bank.case_history(case_ids)
        kept.forget([ids[0]])
        return history

    assert same(kept.get(ids, read_while_labelled), bank.case_history(ids))
    kept.get(ids, counting(bank, reads))
    assert reads == [ids, ids]


def test_slots_of_labelled_cases_are_reused_without_starting_again(
    bank: InMemoryBank, fill_bank: FillBank, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(histories, "MAX_CASES", 4)
    ids, kept, reads = filled(bank, fill_bank, 30, 8)
    kept.get(ids[:4], counting(bank, reads))
    kept.forget(ids[:2])
    assert same(kept.get(ids[2:6], counting(bank, reads)), bank.case_history(ids[2:6]))
    assert same(kept.get(ids[2:6], counting(bank, reads)), bank.case_history(ids[2:6]))
    assert reads == [ids[:4], ids[4:6]]  # the two still kept, then the two new ones, once


def test_a_kept_history_labelled_while_another_is_read_is_read_afresh(
    bank: InMemoryBank, fill_bank: FillBank
) -> None:
    ids, kept, reads = filled(bank, fill_bank, 20, 6)
    kept.get(ids[:3], counting(bank, reads))

    def read_while_labelled(case_ids: list[int]) -> History:
        reads.append(list(case_ids))
        kept.forget([ids[0]])  # a kept case, not one being read
        return bank.case_history(case_ids)

    assert same(kept.get(ids, read_while_labelled), bank.case_history(ids))
    assert reads == [ids[:3], ids[3:], ids]  # then everything, in one read
