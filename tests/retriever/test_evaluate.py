"""Metrics agree with the textbook definitions and refuse to invent ranking quality."""

from __future__ import annotations

import numpy as np
import pytest

from retriever.evaluate import auc, ranking_metrics


def test_auc_matches_pairwise_definition() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(200) < 0.3).astype(np.float32)
    s = np.round(rng.random(200), 1)  # many ties
    pos, neg = s[y == 1], s[y == 0]
    pairwise = (
        (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    ) / (len(pos) * len(neg))
    assert auc(y, s) == pytest.approx(pairwise)
    assert auc(np.ones(3), np.arange(3.0)) is None


def test_ranking_metrics_skip_uniform_requests() -> None:
    rids = ["a"] * 4 + ["b"] * 4
    rewards = np.array([1, 1, 1, 1, 0, 1, 0, 0], np.float32)
    perfect = np.array([0, 0, 0, 0, 0.1, 0.9, 0.2, 0.3])
    m = ranking_metrics(rids, rewards, perfect, k=1)
    assert m["n_ranking_requests"] == 1
    assert m["ndcg@1"] == 1.0 and m["precision@1"] == 1.0
    worst = ranking_metrics(rids, rewards, -perfect, k=1)
    assert worst["ndcg@1"] == 0.0
    assert ranking_metrics(rids[:4], rewards[:4], perfect[:4])["ndcg@4"] is None
