"""Labelled (query, case) pairs as arrays, from the case bank or from Memento's JSONL, split by query.

Everything downstream (train, evaluate, online) reads a `TrainingSet`. The case bank builds one
from its impressions (`CaseBank.training_set()`, same field names); `load_pairs` builds one from
Memento's `training_data.jsonl`. Splits are by `request_ids` (one request = one query), never by
row: the 8 rows of a Memento query share its label, so a row split leaks the answer.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from retriever.model import CASE_STATS

Encode = Callable[[list[str]], np.ndarray]


@dataclass
class TrainingSet:
    """One row per labelled impression: a case shown for a query, and how that request ended."""

    impression_ids: np.ndarray  # (N,) int64
    request_ids: list[str]  # (N,) group key: rows of one request stay on one side of a split
    query_vecs: np.ndarray  # (N, D) float32 unit vectors
    case_vecs: np.ndarray  # (N, D) float32 unit vectors
    case_stats: np.ndarray  # (N, 3) float32, columns CASE_STATS
    rewards: np.ndarray  # (N,) float32 in [0, 1]
    propensities: np.ndarray  # (N,) float32: probability the case was shown at that rank

    def __len__(self) -> int:
        return len(self.request_ids)

    def take(self, index: np.ndarray) -> TrainingSet:
        """The rows at `index` (a boolean mask or integer positions)."""
        idx = np.flatnonzero(index) if index.dtype == bool else index
        return TrainingSet(
            impression_ids=self.impression_ids[idx],
            request_ids=[self.request_ids[i] for i in idx],
            query_vecs=self.query_vecs[idx],
            case_vecs=self.case_vecs[idx],
            case_stats=self.case_stats[idx],
            rewards=self.rewards[idx],
            propensities=self.propensities[idx],
        )


def as_training_set(obj: Any) -> TrainingSet:
    """Adopt the case bank's TrainingSet (same fields, its own class) with checked dtypes."""
    if isinstance(obj, TrainingSet):
        return obj
    values = {f.name: getattr(obj, f.name) for f in fields(TrainingSet)}
    return TrainingSet(
        impression_ids=np.asarray(values["impression_ids"], dtype=np.int64),
        request_ids=[str(r) for r in values["request_ids"]],
        query_vecs=np.asarray(values["query_vecs"], dtype=np.float32),
        case_vecs=np.asarray(values["case_vecs"], dtype=np.float32),
        case_stats=np.asarray(values["case_stats"], dtype=np.float32).reshape(-1, len(CASE_STATS)),
        rewards=np.asarray(values["rewards"], dtype=np.float32),
        propensities=np.asarray(values["propensities"], dtype=np.float32),
    )


def held_out_mask(request_ids: Sequence[str], fraction: float = 0.2, seed: int = 0) -> np.ndarray:
    """True for rows whose request falls in the held-out slice.

    The slice is a hash of the request id, not a random draw, so a request stays on the same side
    in every retrain: the active version was never trained on today's held-out rows, and an old
    and a new version can be compared on the same rows.
    """
    cut = int(fraction * 2**32)
    cache: dict[str, bool] = {}
    out = np.empty(len(request_ids), dtype=bool)
    for i, rid in enumerate(request_ids):
        if rid not in cache:
            digest = hashlib.blake2b(f"{seed}:{rid}".encode(), digest_size=4).digest()
            cache[rid] = int.from_bytes(digest, "big") < cut
        out[i] = cache[rid]
    return out


def split_by_request(
    data: TrainingSet, fraction: float = 0.2, seed: int = 0
) -> tuple[TrainingSet, TrainingSet]:
    """(train, held_out): no request has rows on both sides."""
    mask = held_out_mask(data.request_ids, fraction, seed)
    return data.take(~mask), data.take(mask)


def data_hash(data: TrainingSet) -> str:
    """A short fingerprint of what a checkpoint was trained on."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(data.impression_ids).tobytes())
    h.update(np.ascontiguousarray(data.rewards).tobytes())
    h.update("\n".join(data.request_ids).encode())
    return h.hexdigest()[:16]


# ----------------------------------------------------------------------------- Memento JSONL


@dataclass
class Pairs:
    """Memento's `training_data.jsonl` rows, as text (before encoding)."""

    queries: list[str]
    cases: list[str]
    case_rewards: np.ndarray  # (N,) 1.0 for case_label "positive", 0.0 for "negative"
    labels: np.ndarray  # (N,) float32 truth_label


def read_pairs(path: Path) -> Pairs:
    """Parse Memento-format pairs: one JSON object per line with query, case, truth_label."""
    queries, cases, case_rewards, labels = [], [], [], []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                queries.append(str(row["query"]))
                cases.append(str(row["case"]))
                labels.append(float(bool(row["truth_label"])))
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{lineno}: not a Memento pair ({exc})") from exc
            case_rewards.append(1.0 if row.get("case_label", "positive") == "positive" else 0.0)
    return Pairs(queries, cases, np.array(case_rewards, np.float32), np.array(labels, np.float32))


def case_record_stats(
    request_ids: Sequence[str],
    case_keys: Sequence[str],
    case_rewards: np.ndarray,
    rewards: np.ndarray,
    counts_toward: np.ndarray,
) -> np.ndarray:
    """The bank's CASE_STATS computed from rows: (N, 3) float32.

    success rate = (sum of rewards of the case's rows from OTHER requests + 1) / (count + 2), the
    Beta(1, 1) prior that keeps new cases from being starved. Only rows in `counts_toward` (the
    training split) count, so no held-out label reaches any feature.
    """
    per_case: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for i, (rid, key) in enumerate(zip(request_ids, case_keys, strict=True)):
        if counts_toward[i]:
            per_case[key][rid].append(float(rewards[i]))
    totals = {
        k: (sum(map(sum, v.values())), sum(map(len, v.values()))) for k, v in per_case.items()
    }
    out = np.empty((len(request_ids), len(CASE_STATS)), dtype=np.float32)
    for i, (rid, key) in enumerate(zip(request_ids, case_keys, strict=True)):
        s, n = totals.get(key, (0.0, 0))
        own = per_case[key].get(rid, []) if key in per_case else []
        s, n = s - sum(own), n - len(own)
        out[i] = (case_rewards[i], (s + 1.0) / (n + 2.0), np.log1p(n))
    return out


def load_pairs(
    path: Path, encode: Encode, fraction: float = 0.2, seed: int = 0
) -> tuple[TrainingSet, np.ndarray]:
    """A TrainingSet from Memento pairs, and its held-out mask (split by query).

    Each distinct text is encoded once. Case statistics count training-split rows only.
    """
    pairs = read_pairs(path)
    texts = sorted(set(pairs.queries) | set(pairs.cases))
    vecs = encode(texts)
    row_of = {t: i for i, t in enumerate(texts)}
    q_idx = np.array([row_of[t] for t in pairs.queries])
    c_idx = np.array([row_of[t] for t in pairs.cases])
    held = held_out_mask(pairs.queries, fraction, seed)
    stats = case_record_stats(pairs.queries, pairs.cases, pairs.case_rewards, pairs.labels, ~held)
    data = TrainingSet(
        impression_ids=np.arange(len(pairs.queries), dtype=np.int64),
        request_ids=list(pairs.queries),
        query_vecs=vecs[q_idx],
        case_vecs=vecs[c_idx],
        case_stats=stats,
        rewards=pairs.labels,
        propensities=np.ones(len(pairs.queries), dtype=np.float32),
    )
    return data, held
