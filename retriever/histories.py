"""Each case's latest labelled showings, kept in process until an outcome changes them.

Ranking weighs the recent outcomes of every relevant candidate (retriever.policy). Reading them
from the bank on every retrieval was the largest single cost of learning under load
(bench/load.py: 8 clients on the starter bank). A case's history changes only when one of its
showings is labelled, and the learner already reads every newly labelled showing of the
namespace, from any process (retriever.online). So a kept history is dropped as soon as one of
its showings is labelled, and read again the next time its case is weighed.

Where outcomes of concurrent writers can commit out of id order (PostgreSQL), the stream of new
showings (outcome id > the last one seen) can miss one, so there a history is also read again
once it is `MAX_AGE` seconds old: its case's history is never stale for longer than that. On
SQLite writers take turns and nothing is missed, so a kept history serves until its case's next
outcome.

The kept rows live in one buffer of fixed size, written through when it is made: the server's
memory stands at its ceiling from the first retrieval instead of creeping up to it as cases
gather outcomes (bench/load.py with a history per case in its own arrays: +1 to +4 MB a run).
Case ids are unique across namespaces, so one buffer serves them all.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

import numpy as np

from retriever.contract import HISTORY, History

MAX_CASES = 2048
"""Histories kept, each in a slot of contract.HISTORY rows of 0.4 KB, 13 MB in all. The starter
bank under bench/load.py weighs ~1,200 cases. When every slot is taken the cache starts again
empty.

A row keeps its query vector in 8 bits, scaled to the row's largest component: its cosine with
another MiniLM vector moves by at most 0.0024 (99 % of pairs < 0.001, over the starter bank's
tasks), a twentieth of the query kernel's width (policy.QUERY_KERNEL_WIDTH). Half precision
took twice the memory, and numpy converts it to float32 without vector instructions: 80 us
for a retrieval's ~180 rows, against 5 us from 8 bits."""

MAX_AGE = 30.0


class RecentHistories:
    """The kept histories, shared by the server's threads and namespaces.

    Reads from the bank run outside the lock: a thread waiting on the bank's connection must not
    hold up every other retrieval (bench/load.py). A history read while an outcome was being
    folded in may predate it, so it serves that retrieval but is not kept."""

    def __init__(self, dimensions: int, max_age: float | None = None) -> None:
        self.dimensions = dimensions
        self.max_age = max_age  # seconds a kept history serves; None: until its case is labelled
        rows = MAX_CASES * HISTORY
        # np.full writes every page now (np.zeros would leave them to the first use): see above
        self._queries = np.full((rows, dimensions), 0, dtype=np.int8)
        self._scales = np.full(rows, 0, dtype=np.float32)
        self._rewards, self._credits = np.full(rows, 0.0), np.full(rows, 0.0)
        self._steps = np.full(rows, 0.0)
        self._ids = np.full(rows, 0, dtype=np.int64)
        self._kept: dict[int, tuple[float, int, int]] = {}  # case id -> (read at, slot, rows)
        self._free = list(range(MAX_CASES))
        self._lock = threading.Lock()
        self._forgotten = 0  # forget() and clear() calls so far

    def forget(self, case_ids: Iterable[int]) -> None:
        """These cases' showings were labelled: their kept history is out of date."""
        with self._lock:
            self._forgotten += 1
            for case_id in case_ids:
                if (entry := self._kept.pop(case_id, None)) is not None:
                    self._free.append(entry[1])

    def clear(self) -> None:
        with self._lock:
            self._forgotten += 1
            self._kept.clear()
            self._free = list(range(MAX_CASES))

    def get(self, case_ids: list[int], read: Callable[[list[int]], History]) -> History:
        """The cases' histories (as `read` gives them: rows grouped by case in the order asked,
        newest first), reading only those not kept or too old."""
        if not case_ids or len(set(case_ids)) > MAX_CASES:
            return read(case_ids)
        now = time.monotonic()
        oldest = -np.inf if self.max_age is None else now - self.max_age
        with self._lock:
            kept = self._kept
            todo = list(dict.fromkeys(i for i in case_ids if i not in kept or kept[i][0] < oldest))
            if not todo:
                return self._gather(case_ids)
            forgotten = self._forgotten
        fresh = read(todo)
        with self._lock:
            if self._forgotten == forgotten:  # else a case was labelled while `read` ran
                self._keep(todo, now, fresh)
                if all(case_id in self._kept for case_id in case_ids):
                    return self._gather(case_ids)
        return fresh if todo == case_ids else read(case_ids)  # served afresh, kept by none

    def _keep(self, case_ids: list[int], now: float, fresh: History) -> None:
        """Copy the fresh histories of `case_ids` into slots (caller holds the lock)."""
        for case_id in case_ids:
            if (old := self._kept.pop(case_id, None)) is not None:
                self._free.append(old[1])
        if len(self._free) < len(case_ids):
            self._kept.clear()
            self._free = list(range(MAX_CASES))
        starts = np.searchsorted(fresh.owner, np.arange(len(case_ids) + 1))
        counts = np.minimum(np.diff(starts), HISTORY)  # `read` gives at most HISTORY a case
        slots = [self._free.pop() for _ in case_ids]
        rows = _ranges(starts[:-1], counts)
        into = _ranges(np.array(slots) * HISTORY, counts)
        queries = fresh.queries[rows]
        scales = np.maximum(np.abs(queries).max(axis=1, initial=0.0), 1e-30) / 127.0
        self._queries[into] = np.rint(queries / scales[:, np.newaxis])
        self._scales[into], self._rewards[into] = scales, fresh.rewards[rows]
        self._credits[into], self._ids[into] = fresh.credits[rows], fresh.ids[rows]
        self._steps[into] = fresh.steps[rows]
        for case_id, slot, count in zip(case_ids, slots, counts.tolist(), strict=True):
            self._kept[case_id] = (now, slot, count)

    def _gather(self, case_ids: list[int]) -> History:
        """The kept histories of `case_ids`, copied out (caller holds the lock)."""
        entries = [self._kept[case_id] for case_id in case_ids]
        counts = np.array([entry[2] for entry in entries])
        rows = _ranges(np.array([entry[1] for entry in entries]) * HISTORY, counts)
        return History(
            np.repeat(np.arange(len(case_ids)), counts),
            self._queries[rows] * self._scales[rows, np.newaxis],
            self._rewards[rows], self._credits[rows], self._ids[rows], self._steps[rows],
        )  # fmt: skip


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The concatenated ranges starts[i] ... starts[i] + counts[i] - 1, as one index array."""
    before = np.cumsum(counts) - counts
    result: np.ndarray = np.arange(counts.sum()) + np.repeat(starts - before, counts)
    return result
