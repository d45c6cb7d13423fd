"""Each case's latest labelled showings, kept in process until an outcome changes them.

Ranking weighs the recent outcomes of every relevant candidate (retriever.policy). Reading them
from the bank on every retrieval was the largest single cost of learning under load
(bench/load.py: 8 clients on the starter bank). A case's history changes only when one of its
showings is labelled, and the learner already reads every newly labelled showing of the
namespace, from any process (retriever.online). So a kept history is dropped as soon as one of
its showings is labelled, and read again the next time its case is weighed.

A history is also read again once it is `MAX_AGE` seconds old: on PostgreSQL, outcomes of
concurrent writers can commit out of id order, and the stream of new showings (outcome id > the
last one seen) would then miss one; its case's history is never stale for longer than that.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

import numpy as np

from retriever.contract import History

MAX_CASES = 2048
"""Histories kept per namespace, each at most contract.HISTORY rows of 0.8 KB: a query vector in
half precision (3 significant digits: a showing's closeness to a query moves by < 0.005), which
halves the cache (at most 25 MB; the starter bank under bench/load.py keeps ~1,200 cases, 4 MB
after three runs). Beyond it the cache starts again empty."""

MAX_AGE = 30.0


class RecentHistories:
    """One namespace's kept histories, shared by the server's threads.

    Reads from the bank run outside the lock: a thread waiting on the bank's connection must not
    hold up every other retrieval (bench/load.py). A history read while an outcome was being
    folded in may predate it, so it serves that retrieval but is not kept."""

    def __init__(self, dimensions: int) -> None:
        self.dimensions = dimensions
        self._kept: dict[int, tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
        self._lock = threading.Lock()
        self._forgotten = 0  # forget() and clear() calls so far

    def forget(self, case_ids: Iterable[int]) -> None:
        """These cases' showings were labelled: their kept history is out of date."""
        with self._lock:
            self._forgotten += 1
            for case_id in case_ids:
                self._kept.pop(case_id, None)

    def clear(self) -> None:
        with self._lock:
            self._forgotten += 1
            self._kept.clear()

    def get(self, case_ids: list[int], read: Callable[[list[int]], History]) -> History:
        """The cases' histories (as `read` gives them: rows grouped by case in the order asked,
        newest first), reading only those not kept or too old."""
        if not case_ids:
            return read([])
        now = time.monotonic()
        with self._lock:
            kept = self._kept
            todo = [i for i in case_ids if i not in kept or now - kept[i][0] > MAX_AGE]
            if len(kept) + len(todo) > MAX_CASES:
                kept.clear()
                todo = list(dict.fromkeys(case_ids))
            waiting = set(todo)
            parts = {case_id: kept[case_id] for case_id in case_ids if case_id not in waiting}
            forgotten = self._forgotten
        if todo:
            fresh = read(todo)
            ends = np.searchsorted(fresh.owner, np.arange(len(todo) + 1))
            for j, case_id in enumerate(todo):  # copies: a kept history must not pin the read
                rows = slice(ends[j], ends[j + 1])
                parts[case_id] = (
                    now, fresh.queries[rows].astype(np.float16), fresh.rewards[rows].copy(),
                    fresh.credits[rows].copy(), fresh.ids[rows].copy(),
                )  # fmt: skip
            with self._lock:
                if self._forgotten == forgotten:
                    self._kept.update((case_id, parts[case_id]) for case_id in todo)
        ordered = [parts[case_id] for case_id in case_ids]
        sizes = [len(part[2]) for part in ordered]
        return History(
            np.repeat(np.arange(len(case_ids)), sizes),
            np.concatenate([part[1] for part in ordered], dtype=np.float32).reshape(
                -1, self.dimensions
            ),
            np.concatenate([part[2] for part in ordered]),
            np.concatenate([part[3] for part in ordered]),
            np.concatenate([part[4] for part in ordered]),
        )
