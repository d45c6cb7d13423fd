"""Held-out classification metrics for a head, always beside the cosine baseline on the same rows.

These are diagnostics (and the offline number on Memento's pairs); what decides a promotion
online is the policy value (retriever.ope).

AUC is over all held-out rows (reward >= 0.5 counts as a success). NDCG@4 and precision@4 are
per request and only over requests whose shown cases did not all end the same way: Memento's
pairs label the whole query, so there every request is uniform and the ranking metrics are
reported as null with `n_ranking_requests = 0` rather than as a meaningless 1.0.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import torch

from retriever.contract import TrainingSet
from retriever.model import PriorHead

K = 4  # Memento's best number of retrieved cases
POSITIVE = 0.5


def auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney, ties count half); None when one class is missing."""
    y = labels >= POSITIVE
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    for start, count in zip(first, counts, strict=True):
        ranks[order[start : start + count]] = start + (count + 1) / 2.0
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def ranking_metrics(
    request_ids: list[str], rewards: np.ndarray, scores: np.ndarray, k: int = K
) -> dict[str, Any]:
    """Mean NDCG@k and precision@k over requests whose rows carry different rewards."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, rid in enumerate(request_ids):
        groups[rid].append(i)
    ndcgs, precisions = [], []
    for rows in groups.values():
        gains = rewards[rows]
        if gains.max() == gains.min():
            continue  # nothing to rank: every shown case ended the same way
        top = np.argsort(-scores[rows], kind="stable")[:k]
        discounts = 1.0 / np.log2(np.arange(2, len(top) + 2))
        ideal = np.sort(gains)[::-1][: len(top)]
        ndcgs.append(float((gains[top] * discounts).sum() / (ideal * discounts).sum()))
        precisions.append(float((gains[top] >= POSITIVE).mean()))
    return {
        f"ndcg@{k}": float(np.mean(ndcgs)) if ndcgs else None,
        f"precision@{k}": float(np.mean(precisions)) if precisions else None,
        "n_ranking_requests": len(ndcgs),
    }


def cosine_scores(data: TrainingSet) -> np.ndarray:
    """The non-parametric baseline (Memento's np_memory): cosine of query and task."""
    scores: np.ndarray = np.einsum("nd,nd->n", data.query_vecs, data.case_vecs)
    return scores


@torch.no_grad()
def predict(model: PriorHead, data: TrainingSet, batch_size: int = 4096) -> np.ndarray:
    """P(reward = 1) for every row, (N,) float32."""
    model.eval()
    out = []
    for s in range(0, len(data), batch_size):
        logits = model(
            torch.from_numpy(data.query_vecs[s : s + batch_size]),
            torch.from_numpy(data.case_vecs[s : s + batch_size]),
            torch.from_numpy(data.plan_vecs[s : s + batch_size]),
        )
        out.append(torch.sigmoid(logits).numpy())
    return np.concatenate(out) if out else np.empty(0, dtype=np.float32)


def log_loss(rewards: np.ndarray, probs: np.ndarray) -> float | None:
    if len(rewards) == 0:
        return None
    p = np.clip(probs.astype(np.float64), 1e-6, 1 - 1e-6)
    return float(-(rewards * np.log(p) + (1 - rewards) * np.log(1 - p)).mean())


def metrics_for_scores(data: TrainingSet, scores: np.ndarray) -> dict[str, Any]:
    """AUC and ranking metrics of `scores` on `data`, with the cosine baseline beside them."""
    cos = cosine_scores(data)
    out: dict[str, Any] = {
        "auc": auc(data.rewards, scores),
        "baseline_cosine_auc": auc(data.rewards, cos),
        "n": len(data),
        "n_requests": len(set(data.request_ids)),
        "positive_rate": float((data.rewards >= POSITIVE).mean()) if len(data) else None,
    }
    out.update(ranking_metrics(data.request_ids, data.rewards, scores))
    base = ranking_metrics(data.request_ids, data.rewards, cos)
    out[f"baseline_cosine_ndcg@{K}"] = base[f"ndcg@{K}"]
    out[f"baseline_cosine_precision@{K}"] = base[f"precision@{K}"]
    return out


def evaluate(model: PriorHead, data: TrainingSet) -> dict[str, Any]:
    """Held-out metrics of a head; `log_loss` is the calibration check."""
    probs = predict(model, data)
    out = metrics_for_scores(data, probs)
    out["log_loss"] = log_loss(data.rewards, probs)
    return out
