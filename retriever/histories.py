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
SQLite writers take turns and nothing is missed; reading every history again each half minute
there doubled the history reads under bench/load.py.

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
"""Histories kept, each in a slot of contract.HISTORY rows of 0.8 KB: a query vector in half
precision (3 significant digits: a showing's closeness to a query moves by < 0.005), 25 MB in
all. The starter bank under bench/load.py weighs ~1,200 cases. When every slot is taken the
cache starts again empty."""

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
        self._queries = np.empty((rows, dimensions), dtype=np.float16)
        self._queries.fill(0)  # written through now: see the module docstring
        self._rewards, self._credits = np.zeros(rows), np.zeros(rows)
        self._ids = np.zeros(rows, dtype=np.int64)
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
        if not case_ids:
            return read([])
        now = time.monotonic()
        parts: dict[int, tuple[np.ndarray, ...]] = {}
        with self._lock:
            kept = self._kept
            oldest = -np.inf if self.max_age is None else now - self.max_age
            todo = list(dict.fromkeys(i for i in case_ids if i not in kept or kept[i][0] < oldest))
            if len(kept) + len(todo) > MAX_CASES:
                kept.clear()
                self._free = list(range(MAX_CASES))
                todo = list(dict.fromkeys(case_ids))
            waiting = set(todo)
            for case_id in case_ids:
                if case_id not in waiting and case_id not in parts:
                    _, slot, n = kept[case_id]
                    rows = slice(slot * HISTORY, slot * HISTORY + n)
                    parts[case_id] = (  # copies: the slot may be taken once the lock is let go
                        self._queries[rows].astype(np.float32), self._rewards[rows].copy(),
                        self._credits[rows].copy(), self._ids[rows].copy(),
                    )  # fmt: skip
            forgotten = self._forgotten
        if todo:
            fresh = read(todo)
            ends = np.searchsorted(fresh.owner, np.arange(len(todo) + 1))
            for j, case_id in enumerate(todo):
                rows = slice(ends[j], ends[j + 1])
                parts[case_id] = (fresh.queries[rows], fresh.rewards[rows], fresh.credits[rows],
                                  fresh.ids[rows])  # fmt: skip
            with self._lock:
                if self._forgotten == forgotten:
                    for case_id in todo:
                        self._keep(case_id, now, parts[case_id])
        ordered = [parts[case_id] for case_id in case_ids]
        sizes = [len(part[1]) for part in ordered]
        return History(
            np.repeat(np.arange(len(case_ids)), sizes),
            np.concatenate([part[0] for part in ordered], dtype=np.float32).reshape(
                -1, self.dimensions
            ),
            np.concatenate([part[1] for part in ordered]),
            np.concatenate([part[2] for part in ordered]),
            np.concatenate([part[3] for part in ordered]),
        )

    def _keep(self, case_id: int, now: float, part: tuple[np.ndarray, ...]) -> None:
        """Copy one case's fresh rows into a slot (caller holds the lock)."""
        old = self._kept.pop(case_id, None)
        if old is not None:
            self._free.append(old[1])
        if not self._free:
            return
        slot = self._free.pop()
        n = min(len(part[1]), HISTORY)
        rows = slice(slot * HISTORY, slot * HISTORY + n)
        self._queries[rows], self._rewards[rows] = part[0][:n], part[1][:n]
        self._credits[rows], self._ids[rows] = part[2][:n], part[3][:n]
        self._kept[case_id] = (now, slot, n)
