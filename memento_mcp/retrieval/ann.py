"""Approximate nearest neighbours for big namespaces: one usearch HNSW file per namespace, kept
beside the bank and opened memory-mapped (issue 10).

usearch was chosen by measurement against hnswlib, faiss-cpu and sqlite-vec (bench/ann_compare.py,
README "Performance"): it opens a saved index as a memory map in milliseconds, removes items,
stores half-precision vectors (half the memory and file of float32, same recall), and is one
self-contained wheel. It cannot filter inside a search, so each namespace has its own index:
a small namespace in a big bank is searched on its own, exactly, and gets its k best cases.

A file is immutable once written; its name carries what it covers:

    <dir>/<namespace digest>-<watermark>-<deletion seq>.usearch   + .json sidecar

`watermark` is the highest case id the bank held when it was built and `deletion seq` the
position in the bank's deletion log (casebank/vectors.py) it reflects: the cases added after the
watermark and the deletions after the seq are applied on top, in memory, by whoever opens it.
A new file replaces the old by an atomic rename; processes that have the old one mapped keep
reading it until they switch. The sidecar holds the file's size and a digest of sampled blocks,
so a truncated or overwritten file is caught before it is mapped.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

CONNECTIVITY = 16
EXPANSION_ADD = 128
EXPANSION_SEARCH = 256
# At 1M cases, recall@10 against exact cosine 0.976 / 0.981 / 0.982 / 0.982 at 128 / 192 / 256 /
# 384 for a search of 50 in 0.64 / 0.77 / 0.83 / 1.09 ms (README): 256 is past the knee, where the
# half-precision vectors' near-ties, not the search, cost the rest.
FORMAT = 1

_NAME = re.compile(r"^([0-9a-f]{16})-(\d+)-(\d+)\.usearch$")


class CorruptIndex(Exception):
    """An index file that cannot be trusted: wrong size, digest, header or settings."""


@dataclass(frozen=True)
class Snapshot:
    """One persisted index file and what it covers."""

    path: Path
    namespace: str
    watermark: int
    deletion_seq: int
    count: int


def usearch_index() -> Any:
    """usearch's Index class. onnxruntime is loaded first: importing it after usearch's
    extension crashes the process (segfault; usearch 2.26, onnxruntime 1.32, Linux x86-64)."""
    import onnxruntime  # noqa: F401
    from usearch.index import Index

    return Index


def digest_of(namespace: str) -> str:
    return hashlib.sha256(namespace.encode()).hexdigest()[:16]


def new_index(dims: int) -> Any:
    Index = usearch_index()
    return Index(
        ndim=dims, metric="ip", dtype="f16", connectivity=CONNECTIVITY,
        expansion_add=EXPANSION_ADD, expansion_search=EXPANSION_SEARCH,
    )


def search(index: Any, query: np.ndarray, n: int, dead: set[int]) -> tuple[np.ndarray, np.ndarray]:
    """(ids, cosine similarities) of the n nearest live items; `dead` items are skipped."""
    size = len(index)
    if size == 0 or n <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    count = min(size, n + len(dead))
    matches = index.search(query, count)
    ids = np.asarray(matches.keys, dtype=np.int64)
    sims = 1.0 - np.asarray(matches.distances, dtype=np.float32)  # "ip" distance is 1 - dot
    if dead:
        keep = np.fromiter((int(i) not in dead for i in ids), dtype=bool, count=len(ids))
        ids, sims = ids[keep], sims[keep]
    return ids[:n], sims[:n]


def _sample_digest(path: Path, size: int) -> str:
    """blake2b over 16 blocks of 64 KiB spread through the file (a full hash of a 1M-case index
    would take a second of every start)."""
    h = hashlib.blake2b(digest_size=16)
    block = 1 << 16
    with path.open("rb") as handle:
        for i in range(16):
            handle.seek(max(0, (size - block) * i // 15))
            h.update(handle.read(block))
    return h.hexdigest()


class IndexDir:
    """The folder of index files beside one bank file."""

    def __init__(self, directory: Path, dims: int, encoder: str) -> None:
        self.directory = directory
        self.dims = dims
        self.encoder = encoder

    def snapshots(self) -> dict[str, Snapshot]:
        """The newest complete file per namespace digest."""
        found: dict[str, Snapshot] = {}
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            return found
        for entry in entries:
            match = _NAME.match(entry.name)
            if not match:
                continue
            sidecar = Path(entry.path).with_suffix(".json")
            try:
                meta = json.loads(sidecar.read_text())
            except (OSError, ValueError):
                continue  # being written, or broken: not a candidate
            snap = Snapshot(Path(entry.path), str(meta.get("namespace")), int(match[2]),
                            int(match[3]), int(meta.get("count", 0)))
            best = found.get(match[1])
            if best is None or (snap.watermark, snap.deletion_seq) > (best.watermark, best.deletion_seq):
                found[match[1]] = snap
        return found

    def open(self, snap: Snapshot) -> Any:
        """Memory-map a snapshot after checking it; CorruptIndex if it fails a check."""
        Index = usearch_index()
        try:
            meta = json.loads(snap.path.with_suffix(".json").read_text())
            size = snap.path.stat().st_size
        except (OSError, ValueError) as exc:
            raise CorruptIndex(f"{snap.path}: {exc}") from exc
        expected = {"format": FORMAT, "dims": self.dims, "encoder": self.encoder}
        if {key: meta.get(key) for key in expected} != expected:
            raise CorruptIndex(f"{snap.path}: built for {meta}, not {expected}")
        if meta.get("size") != size or meta.get("digest") != _sample_digest(snap.path, size):
            raise CorruptIndex(f"{snap.path}: size or digest differs from when it was written")
        try:
            header = Index.metadata(str(snap.path))
            if not header or header.get("dimensions") != self.dims:
                raise CorruptIndex(f"{snap.path}: bad header {header}")
            index = Index.restore(str(snap.path), view=True)
        except CorruptIndex:
            raise
        except Exception as exc:  # usearch raises plain RuntimeError/ValueError on bad files
            raise CorruptIndex(f"{snap.path}: {exc}") from exc
        if index is None or len(index) != snap.count:
            raise CorruptIndex(f"{snap.path}: holds {None if index is None else len(index)} items,"
                               f" its sidecar says {snap.count}")
        index.expansion_search = EXPANSION_SEARCH
        return index

    def load(self, snap: Snapshot) -> Any:
        """A writable in-memory copy of a snapshot (to add to and remove from)."""
        Index = usearch_index()
        index = Index.restore(str(snap.path))
        if index is None:
            raise CorruptIndex(f"{snap.path}: cannot be loaded")
        index.expansion_add = EXPANSION_ADD
        index.expansion_search = EXPANSION_SEARCH
        return index

    def write(self, namespace: str, index: Any, watermark: int, deletion_seq: int) -> Snapshot:
        """Save atomically as the namespace's newest snapshot, then drop the older files."""
        self.directory.mkdir(parents=True, exist_ok=True)
        digest = digest_of(namespace)
        path = self.directory / f"{digest}-{watermark}-{deletion_seq}.usearch"
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        index.save(str(partial))
        with partial.open("rb+") as handle:
            os.fsync(handle.fileno())
        size = partial.stat().st_size
        meta = {"format": FORMAT, "namespace": namespace, "dims": self.dims,
                "encoder": self.encoder, "count": len(index), "size": size,
                "digest": _sample_digest(partial, size)}
        sidecar_partial = partial.with_suffix(".json.partial")
        sidecar_partial.write_text(json.dumps(meta))
        os.replace(partial, path)  # the index first: a sidecar never names a missing file
        os.replace(sidecar_partial, path.with_suffix(".json"))
        for old in self.directory.glob(f"{digest}-*"):
            if old.stem != path.stem and not old.name.endswith(".lock"):
                with contextlib.suppress(FileNotFoundError):
                    old.unlink()
        return Snapshot(path, namespace, watermark, deletion_seq, len(index))

    def discard(self, snap: Snapshot) -> None:
        """Move a corrupt file aside (kept for inspection) so that nobody maps it again; where
        we may not (a read-only bank's directory), it is rejected again at the next start."""
        for path in (snap.path, snap.path.with_suffix(".json")):
            with contextlib.suppress(OSError):
                os.replace(path, path.with_name(path.name + ".corrupt"))

    @contextlib.contextmanager
    def build_lock(self, namespace: str) -> Iterator[bool]:
        """True when this process may build the namespace's next file (one builder per bank)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with (self.directory / f"{digest_of(namespace)}.lock").open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
