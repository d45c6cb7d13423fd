"""Splits by query, and Memento's training_data.jsonl as a `contract.TrainingSet`.

Everything downstream (train, evaluate, ope, job) reads a `TrainingSet`: the case bank builds one
from its labelled impressions (`bank.training_set(namespace)`), `load_pairs` from Memento's
pairs. Splits are by `request_ids` (one request = one query), never by row: the 8 rows of a
Memento query share its label, so a row split leaks the answer.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retriever.contract import TrainingSet

Encode = Callable[[list[str]], np.ndarray]


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
    plans: list[str]  # the case's plan; its task where a row has no plan
    labels: np.ndarray  # (N,) float32 truth_label


def read_pairs(path: Path) -> Pairs:
    """Parse Memento-format pairs: one JSON object per line with query, case, plan, truth_label."""
    queries, cases, plans, labels = [], [], [], []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                queries.append(str(row["query"]))
                cases.append(str(row["case"]))
                plans.append(str(row.get("plan") or row["case"]))
                labels.append(float(bool(row["truth_label"])))
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{lineno}: not a Memento pair ({exc})") from exc
    return Pairs(queries, cases, plans, np.array(labels, np.float32))


def load_pairs(
    path: Path, encode: Encode, fraction: float = 0.2, seed: int = 0
) -> tuple[TrainingSet, np.ndarray]:
    """A TrainingSet from Memento pairs, and its held-out mask (split by query).

    Each distinct text is encoded once. The plan vector is the row's `plan` field encoded alone,
    as the bank embeds a stored case's plan, so a head trained here reads at serving time the kind
    of plan vector it was trained on. It does not move the held-out AUC (0.608 with the task
    standing in for the plan, 0.608 with the plan, mean of query splits 10-29): a pair's label is
    its query's, so no case feature can. Every row is a whole observation (credit 1) that no
    policy chose (propensity 1).
    """
    pairs = read_pairs(path)
    texts = sorted(set(pairs.queries) | set(pairs.cases) | set(pairs.plans))
    vecs = encode(texts)
    row_of = {t: i for i, t in enumerate(texts)}
    q_idx = np.array([row_of[t] for t in pairs.queries])
    c_idx = np.array([row_of[t] for t in pairs.cases])
    p_idx = np.array([row_of[t] for t in pairs.plans])
    n = len(pairs.queries)
    data = TrainingSet(
        impression_ids=np.arange(n, dtype=np.int64),
        request_ids=list(pairs.queries),
        case_ids=c_idx.astype(np.int64),
        query_vecs=vecs[q_idx],
        case_vecs=vecs[c_idx],
        plan_vecs=vecs[p_idx],
        rewards=pairs.labels,
        credits=np.ones(n, dtype=np.float32),
        propensities=np.ones(n, dtype=np.float32),
    )
    return data, held_out_mask(pairs.queries, fraction, seed)
