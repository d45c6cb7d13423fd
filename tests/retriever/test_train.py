"""Training on a small labelled set moves scores the right way."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from retriever.bank import InMemoryBank
from retriever.data import as_training_set
from retriever.evaluate import auc, cosine_scores, evaluate
from retriever.model import QScorer, ScorerConfig
from retriever.scorer import HeadScorer
from retriever.train import TrainConfig, ips_weights, train_head

DIM = 16  # conftest's synthetic vectors
FillBank = Callable[..., None]


def test_forward_shapes() -> None:
    model = QScorer(ScorerConfig(embed_dim=DIM)).eval()
    q, c, s = np.ones(DIM, np.float32), np.ones((5, DIM), np.float32), np.zeros((5, 3), np.float32)
    out = HeadScorer(model, "v").score(q, c, s)
    assert out.shape == (5,)
    assert ((out >= 0) & (out <= 1)).all()
    assert HeadScorer(model, "v").score(q, c[:0], s[:0]).shape == (0,)


def test_training_moves_scores_towards_rewarded_cases(
    bank: InMemoryBank, fast_config: TrainConfig, fill_bank: FillBank
) -> None:
    fill_bank(bank, 150)
    data = as_training_set(bank.training_set())
    cases = bank.case_vectors()
    good = cases[:, 0] > 0
    query = cases.mean(0)
    untrained = HeadScorer(QScorer(ScorerConfig(embed_dim=DIM)), "v0")
    before = untrained.score(query, cases, bank.case_stats(list(range(len(cases)))))

    model, summary = train_head(data, fast_config, ScorerConfig(embed_dim=DIM))
    after = HeadScorer(model, "v1").score(query, cases, bank.case_stats(list(range(len(cases)))))

    gap_before = before[good].mean() - before[~good].mean()
    gap_after = after[good].mean() - after[~good].mean()
    assert gap_after > 0.3 > abs(gap_before)
    assert summary["steps"] >= 1


def test_head_beats_cosine_on_held_out_requests(
    bank: InMemoryBank, fast_config: TrainConfig, fill_bank: FillBank
) -> None:
    fill_bank(bank, 150, seed=1)
    train = as_training_set(bank.training_set())
    fill_bank(bank, 40, seed=2)  # new requests, same cases
    everything = as_training_set(bank.training_set())
    test = everything.take(~np.isin(everything.impression_ids, train.impression_ids))
    model, _ = train_head(train, fast_config, ScorerConfig(embed_dim=DIM))
    metrics = evaluate(model, test)
    assert metrics["auc"] > 0.75
    assert metrics["auc"] > auc(test.rewards, cosine_scores(test)) + 0.15
    assert (
        metrics["n_ranking_requests"] > 0 and metrics["ndcg@4"] > metrics["baseline_cosine_ndcg@4"]
    )


def test_ips_weights_are_clipped_and_mean_one() -> None:
    w = ips_weights(np.array([1.0, 0.5, 0.001], np.float32), clip=10.0)
    assert np.isclose(w.mean(), 1.0)
    assert w[2] / w[0] == np.float32(10.0)


def test_numpy_serving_matches_torch_forward() -> None:
    import torch

    rng = np.random.default_rng(0)
    model = QScorer(ScorerConfig(embed_dim=DIM)).eval()
    q, c, s = rng.normal(size=DIM), rng.normal(size=(7, DIM)), rng.random((7, 3))
    with torch.no_grad():
        ref = torch.sigmoid(
            model(*(torch.tensor(x, dtype=torch.float32) for x in (q, c, s)))
        ).numpy()
    assert np.allclose(HeadScorer(model, "v").score(q, c, s), ref, atol=1e-5)
