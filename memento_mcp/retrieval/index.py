"""Dense top-N over each namespace's case embeddings, kept in step with the bank (issue 10).

A namespace below `ann_min_cases` is an exact matrix-vector product over its vectors in memory
(a few ms at 20k cases, and exact). A bigger one is served by an HNSW index (retrieval/ann.py)
persisted beside the bank and opened memory-mapped, so a start at 1M cases reads no vectors;
the cases added since that file was written are searched exactly beside it, and the ones
deleted since are skipped. When those grow past a bound, a background thread writes the next
file (one process at a time per bank) and every process sharing the bank switches to it.

Each search first asks SQLite whether anyone (this process, or another one on the same file)
committed since the last look; if so it reads only the new cases and the deletion log
(casebank/vectors.py), never the whole bank. A missing, stale or corrupt file makes that
namespace exact (its vectors read once from the bank) while the file is rebuilt in the
background; `status()` says so, and case_bank_stats shows it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from memento_mcp.casebank import CaseBank
from memento_mcp.casebank import vectors as bankvectors
from memento_mcp.retrieval import ann
from memento_mcp.retrieval.database import DatabaseIndex
from memento_mcp.retrieval.exact import Rows as _Rows

log = logging.getLogger(__name__)

ANN_MIN_CASES = 20_000
"""Namespaces with fewer cases are searched exactly (about 2 ms at 20k on 2 cores)."""
FILE_CHECK_S = 2.0
"""How often to look for a newer index file written by another process."""
RETRY_S = 60.0
"""After a failed build, wait this long before trying again (answers stay exact meanwhile)."""


class _Space:
    """One namespace: an optional ANN snapshot, plus exact rows for the cases after it."""

    def __init__(self, dims: int) -> None:
        self.dims = dims
        self.reset()

    def reset(self) -> None:
        self.rows = _Rows(self.dims)
        self.ann: Any = None  # usearch Index: memory-mapped file, or in memory for ":memory:"
        self.snap: ann.Snapshot | None = None
        self.watermark = 0  # case ids <= watermark are in `ann` (or deleted: see `dead`)
        self.deletion_seq = 0
        self.dead: set[int] = set()  # in `ann` but deleted from the bank since
        self.building = False
        self.deleted_while_building: set[int] = set()
        self.retry_at = 0.0
        self.note: str | None = None

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        keep = ids > self.watermark
        if keep.any():
            self.rows.append(ids[keep], vectors[keep])

    def forget(self, case_id: int) -> None:
        if not self.rows.remove(case_id) and self.ann is not None and case_id <= self.watermark:
            self.dead.add(case_id)
        if self.building:
            self.deleted_while_building.add(case_id)

    def live(self) -> int:
        return (len(self.ann) - len(self.dead) if self.ann is not None else 0) + self.rows.size


class VectorIndex:
    """Dense top-N over the cases of a namespace (pending ones included; callers filter)."""

    def __init__(
        self,
        bank: CaseBank,
        dims: int = 384,
        *,
        ann_min_cases: int = ANN_MIN_CASES,
        background: bool = True,
    ) -> None:
        self.bank = bank
        self.dims = dims
        self.ann_min_cases = ann_min_cases
        self.delta_max = max(1000, min(ann_min_cases // 2, 10_000))
        self.dead_max = max(100, min(ann_min_cases // 20, 1000))
        self.background = background
        self.files = (
            None if bank.path == ":memory:"
            else ann.IndexDir(Path(bank.path + ".index"), dims, bank.encoder_name)
        )
        self._lock = threading.RLock()
        self._spaces: dict[str, _Space] = {}
        self._state: bankvectors.BankState | None = None
        self._seen_version: int | None = None
        self._dirty = True
        self._files_checked = time.monotonic()
        self._threads: list[threading.Thread] = []

    # -- following the bank ------------------------------------------------------------------

    def sync(self) -> None:
        """Catch up with what was committed since the last look (by anyone)."""
        with self._lock:
            version = self.bank.data_version()
            if self._state is None:
                self._open()
            elif version != self._seen_version or self._dirty:
                self._catch_up()
            self._seen_version, self._dirty = version, False
            if self.files is not None and time.monotonic() - self._files_checked > FILE_CHECK_S:
                self._files_checked = time.monotonic()
                self._adopt_newer_files()
            self._maybe_build()

    def invalidate(self) -> None:
        """Our own connection wrote; data_version only moves for other connections' commits."""
        with self._lock:
            self._dirty = True

    def _space(self, namespace: str) -> _Space:
        space = self._spaces.get(namespace)
        if space is None:
            space = self._spaces[namespace] = _Space(self.dims)
        return space

    def _open(self) -> None:
        """First look: map each namespace's index file, read only what came after it."""
        snaps = self.files.snapshots() if self.files is not None else {}
        with bankvectors.read_snapshot(self.bank):
            state = bankvectors.state(self.bank)
            for namespace, count in bankvectors.namespace_counts(self.bank).items():
                space = self._space(namespace)
                snap = snaps.get(ann.digest_of(namespace))
                if snap is not None and snap.namespace == namespace and count >= self.ann_min_cases:
                    self._open_snapshot(space, snap, state, count)
                if space.ann is None:
                    for ids, _, vectors in bankvectors.vectors(
                        self.bank, 0, state.max_id, namespace, few=count < self.ann_min_cases
                    ):
                        space.add(ids, vectors)
            self._state = state

    def _open_snapshot(
        self, space: _Space, snap: ann.Snapshot, state: bankvectors.BankState, count: int
    ) -> None:
        assert self.files is not None
        try:
            if snap.watermark > state.max_id or snap.deletion_seq > state.deletion_seq:
                raise ann.CorruptIndex(f"{snap.path.name} is ahead of the bank (another bank's?)")
            index = self.files.open(snap)
            dead = {
                case_id for case_id, _ in bankvectors.deletions(
                    self.bank, snap.deletion_seq, state.deletion_seq, snap.namespace
                ) if case_id <= snap.watermark
            }
            space.ann, space.snap, space.watermark, space.dead = index, snap, snap.watermark, dead
            space.deletion_seq = snap.deletion_seq
            for ids, _, vectors in bankvectors.vectors(
                self.bank, snap.watermark, state.max_id, snap.namespace
            ):
                space.add(ids, vectors)
            if space.live() != count:
                raise ann.CorruptIndex(
                    f"{snap.path.name} is stale: with the bank's changes since, it holds"
                    f" {space.live()} cases where the bank has {count}"
                )
        except ann.CorruptIndex as exc:
            log.warning("vector index: %s; rebuilding it in the background", exc)
            self.files.discard(snap)
            space.reset()
            space.note = f"index file rejected ({exc}): searching exactly, rebuilding"

    def _catch_up(self) -> None:
        assert self._state is not None
        with bankvectors.read_snapshot(self.bank):
            state = bankvectors.state(self.bank)
            replaced = (
                state.max_id < self._state.max_id or state.deletion_seq < self._state.deletion_seq
            )
            if not replaced:
                self._apply(state)
        if replaced:  # the bank file was replaced under us: start again from it
            self._spaces, self._state = {}, None
            self._open()

    def _apply(self, state: bankvectors.BankState) -> None:
        """Add the cases and apply the deletions committed between our state and `state`."""
        assert self._state is not None
        if state.max_id > self._state.max_id:
            for ids, namespaces, vectors in bankvectors.vectors(
                self.bank, self._state.max_id, state.max_id
            ):
                names = np.array(namespaces)
                for namespace in dict.fromkeys(namespaces):
                    mask = names == namespace
                    self._space(namespace).add(ids[mask], vectors[mask])
        if state.deletion_seq > self._state.deletion_seq:
            for case_id, namespace in bankvectors.deletions(
                self.bank, self._state.deletion_seq, state.deletion_seq
            ):
                if namespace in self._spaces:
                    self._spaces[namespace].forget(case_id)
        self._state = state

    def _adopt_newer_files(self) -> None:
        """Switch to index files that another process wrote since we opened ours."""
        assert self.files is not None and self._state is not None
        for digest, snap in self.files.snapshots().items():
            space = self._spaces.get(snap.namespace)
            if (
                space is None or space.building or ann.digest_of(snap.namespace) != digest
                # below ann_min_cases a namespace stays exact, whatever files exist (issue 10:
                # adopting one here made the benchmark's "exact" baseline an index search)
                or (space.ann is None and space.rows.size < self.ann_min_cases)
                or (snap.watermark, snap.deletion_seq) <= (space.watermark, space.deletion_seq)
                or snap.watermark > self._state.max_id
                or snap.deletion_seq > self._state.deletion_seq
            ):
                continue
            try:
                index = self.files.open(snap)
            except ann.CorruptIndex:
                continue  # its writer or our next start deals with it
            space.dead = {
                case_id for case_id, _ in bankvectors.deletions(
                    self.bank, snap.deletion_seq, self._state.deletion_seq, snap.namespace
                ) if case_id <= snap.watermark
            }
            space.ann, space.snap, space.watermark = index, snap, snap.watermark
            space.deletion_seq = snap.deletion_seq
            space.rows.drop_upto(snap.watermark)

    # -- building index files ----------------------------------------------------------------

    def _needs_build(self, space: _Space) -> bool:
        if space.building or time.monotonic() < space.retry_at or self.bank.read_only:
            return False  # a read-only bank (issue 12) is searched exactly beyond its files
        if space.ann is None:
            return space.rows.size >= self.ann_min_cases
        return space.rows.size >= self.delta_max or len(space.dead) >= self.dead_max

    def _maybe_build(self) -> None:
        for namespace, space in self._spaces.items():
            if self._needs_build(space):
                space.building = True
                if self.background:
                    thread = threading.Thread(
                        target=self._build, args=(namespace, 1), daemon=True,
                        name=f"memento-index-{namespace}",
                    )
                    self._threads = [t for t in self._threads if t.is_alive()] + [thread]
                    thread.start()
                else:
                    self._build(namespace, os.cpu_count() or 1)

    def _build(self, namespace: str, threads: int) -> None:
        """Write the namespace's next index file: the last one, minus deletions, plus new rows."""
        space = self._spaces[namespace]
        try:
            if self.files is None:
                self._build_into(space, threads, None)
                return
            with self.files.build_lock(namespace) as mine:
                if mine:
                    self._build_into(space, threads, namespace)
                # else another process is writing it; _adopt_newer_files picks it up
        except Exception as exc:  # a failed build leaves exact search in place
            log.exception("vector index: building %r failed", namespace)
            with self._lock:
                space.note = f"index build failed, searching exactly: {exc}"
                space.retry_at = time.monotonic() + RETRY_S
        finally:
            with self._lock:
                space.building = False
                space.deleted_while_building = set()

    def _build_into(self, space: _Space, threads: int, namespace: str | None) -> None:
        with self._lock:
            assert self._state is not None
            ids = space.rows.ids[: space.rows.size].copy()
            vectors = space.rows.vectors[: space.rows.size].copy()
            dead = set(space.dead)
            base, base_index = space.snap, space.ann
            watermark, deletion_seq = self._state.max_id, self._state.deletion_seq
            space.deleted_while_building = set()
        if self.files is not None and base is not None:
            index = self.files.load(base)
        elif base_index is not None:
            index = base_index.copy()
        else:
            index = ann.new_index(self.dims)
        if dead:
            index.remove(np.fromiter(dead, dtype=np.int64))
        if len(ids):
            index.add(ids, vectors, threads=threads)
        snap = None
        if self.files is not None and namespace is not None:
            snap = self.files.write(namespace, index, watermark, deletion_seq)
            index = self.files.open(snap)
        with self._lock:
            space.ann, space.snap, space.watermark = index, snap, watermark
            space.deletion_seq = deletion_seq
            space.rows.drop_upto(watermark)
            space.dead = (space.dead - dead) | {
                case_id for case_id in space.deleted_while_building if case_id <= watermark
            }
            space.note = None

    def flush(self) -> None:
        """Bring every index file up to date now, on every core (after a bulk import)."""
        self.wait()
        with self._lock:
            background, self.background = self.background, False  # sync() builds right here
            try:
                self.sync()
            finally:
                self.background = background
            todo = [
                namespace for namespace, space in self._spaces.items()
                if not space.building and space.ann is not None and (space.rows.size or space.dead)
            ]
            for namespace in todo:
                self._spaces[namespace].building = True
        for namespace in todo:
            self._build(namespace, os.cpu_count() or 1)

    def wait(self, timeout: float | None = None) -> None:
        """Wait for background builds to finish (tests and benchmarks)."""
        for thread in list(self._threads):
            thread.join(timeout)

    # -- searching ---------------------------------------------------------------------------

    def search(self, namespace: str, query: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """(case_ids, cosine similarities) of the `limit` nearest cases, best first."""
        self.sync()
        with self._lock:
            space = self._spaces.get(namespace)
            if space is None:
                return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
            ids, sims = space.rows.top(query, limit)
            if space.ann is not None:
                near_ids, near_sims = ann.search(space.ann, query, limit, space.dead)
                ids, sims = np.concatenate([ids, near_ids]), np.concatenate([sims, near_sims])
        order = np.argsort(-sims, kind="stable")[:limit]
        return ids[order], sims[order]

    def candidates(
        self, namespace: str, query: np.ndarray, limit: int, also: list[int]
    ) -> tuple[list[int], np.ndarray]:
        """What retrieval ranks: the answered cases among the `limit` nearest and then `also`
        (each once, in that order), with their task vectors."""
        dense, _ = self.search(namespace, query, limit)
        return self.bank.labelled_vectors(list(dict.fromkeys([*dense.tolist(), *also])))

    def status(self) -> dict[str, dict[str, Any]]:
        """Per namespace: how it is searched, what is pending, and whether a rebuild runs."""
        self.sync()
        with self._lock:
            return {
                namespace: {
                    "cases": space.live(),
                    "search": "ann" if space.ann is not None else "exact",
                    "indexed": len(space.ann) if space.ann is not None else 0,
                    "exact_rows": space.rows.size,
                    "deleted_since_index": len(space.dead),
                    "rebuilding": space.building,
                    **({"note": space.note} if space.note else {}),
                }
                for namespace, space in sorted(self._spaces.items())
            }

    def case_ids(self, namespace: str) -> set[int]:
        """Every case id a search of the namespace can return (to check it against the bank)."""
        self.sync()
        with self._lock:
            space = self._spaces.get(namespace)
            if space is None:
                return set()
            indexed = set() if space.ann is None else set(np.asarray(space.ann.keys).tolist())
            return (indexed - space.dead) | set(space.rows.ids[: space.rows.size].tolist())

    def __len__(self) -> int:
        self.sync()
        with self._lock:
            return sum(space.live() for space in self._spaces.values())


def open_index(
    bank: CaseBank, dims: int = 384, *, ann_min_cases: int = ANN_MIN_CASES
) -> VectorIndex | DatabaseIndex:
    """The dense search for this bank: in the database when it searches itself (Postgres),
    else VectorIndex's in-process mirror of the SQLite file."""
    if getattr(bank, "searches_vectors", False):
        return DatabaseIndex(bank)  # type: ignore[arg-type]  # PostgresBank
    return VectorIndex(bank, dims, ann_min_cases=ann_min_cases)
