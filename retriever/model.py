"""The Q-scorer: P(reward = 1 | query, case), Memento's parametric case memory.

Two modules, both pure (no I/O, no file paths):

- `QScorer` is the head. It reads *frozen* sentence vectors of the query and of the case plus the
  case's own record (`CASE_STATS`) and returns a logit. This is what serves and what retrains
  online in the background: seconds on a CPU.
- `EncoderQScorer` is Memento's full setup: the sentence encoder itself is fine-tuned, the query
  and the case are encoded by it, and the same head scores the pair. The caller passes the
  transformer in, so this file never loads weights.

The pair features [q, c, q*c, |q-c|, cos] are the usual sentence-pair recipe (InferSent,
SBERT's classification head): the head can learn both "what kind of query succeeds" (q alone,
which is all Memento's query-level labels can teach) and "does this case fit this query"
(q*c, |q-c|, cos), which only per-case rewards from the online loop can teach.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

CASE_STATS = ("case_reward", "case_success_rate", "case_log_labelled")
"""Columns of the (N, 3) case-record features; the case bank computes them, see casebank/store.py."""


@dataclass
class ScorerConfig:
    embed_dim: int = 384  # all-MiniLM-L6-v2
    n_stats: int = len(CASE_STATS)
    hidden: int = 64
    dropout: float = 0.5
    input_dropout: float = 0.0  # on the pair features: the main guard against memorising queries
    use_embeddings: bool = True  # False: a head on cos + case record only (an ablation)
    min_cos_weight: float | None = None  # a floor on the cosine weight, online only (see QScorer)

    @property
    def n_features(self) -> int:
        pair = 4 * self.embed_dim if self.use_embeddings else 0
        return pair + 1 + self.n_stats  # + cos + stats


class QScorer(nn.Module):
    """Pair features -> two-layer MLP, plus a linear term on [cos, stats] -> one logit per pair.

    The linear ("wide") term carries the case's record and the similarity straight to the logit;
    training leaves it out of the L2 penalty, since four weights cannot overfit, while the MLP
    over 1.5k embedding features needs the penalty to generalise (train.py).

    Online, its cosine weight is at least `min_cos_weight`. Outcomes are only ever logged for
    cases that were shown, i.e. similar ones, so the data says nothing about an unrelated
    candidate; without the floor a never-tried unrelated case (success prior 0.5) outranked tried,
    middling similar ones and the online learner wandered off topic (bench/learning_curve.py).
    The head can still reorder similar cases by their record; it cannot prefer an unrelated case
    for lack of data. Offline on Memento's pairs there is no floor: there one query's label is
    compared with another's, similarity is no prior for that (cosine AUC 0.45), and a floor of 6
    cost 0.13 AUC.
    """

    def __init__(self, config: ScorerConfig) -> None:
        super().__init__()
        self.config = config
        self.mlp = nn.Sequential(
            nn.Dropout(config.input_dropout),
            nn.Linear(config.n_features, config.hidden),
            nn.GELU(approximate="tanh"),  # the tanh form, so serving can run it in numpy
            nn.Dropout(config.dropout),
            nn.Linear(config.hidden, 1),
        )
        self.direct = nn.Linear(1 + config.n_stats, 1)  # on [cos, stats]; cos column floored below

    def features(self, q: torch.Tensor, c: torch.Tensor, stats: torch.Tensor) -> torch.Tensor:
        # q, c: (B, D) unit vectors; stats: (B, S)
        cos = (q * c).sum(-1, keepdim=True)  # (B, 1)
        parts = [cos, stats]
        if self.config.use_embeddings:
            parts = [q, c, q * c, (q - c).abs(), *parts]
        return torch.cat(parts, dim=-1)  # (B, 4D + 1 + S)

    def forward(self, q: torch.Tensor, c: torch.Tensor, stats: torch.Tensor) -> torch.Tensor:
        # q: (B, D) or (D,) broadcast over the candidates; c: (B, D); stats: (B, S)
        q = q.expand_as(c)
        x = self.features(q, c, stats)  # (B, F); its last 1 + S columns are [cos, stats]
        wide = x[:, -1 - self.config.n_stats :] @ self.direct_weight() + self.direct.bias  # (B,)
        logits: torch.Tensor = self.mlp(x).squeeze(-1) + wide  # (B,)
        return logits

    def direct_weight(self) -> torch.Tensor:
        """The wide term's weights on [cos, stats], cosine floored at min_cos_weight: (1 + S,)."""
        w = self.direct.weight[0]
        if self.config.min_cos_weight is None:
            return w
        return torch.cat([self.config.min_cos_weight + F.softplus(w[:1]), w[1:]])


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Sentence-transformers' pooling: the mean over real tokens, L2-normalised."""
    # hidden: (B, T, D); mask: (B, T)
    m = mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)  # (B, D)
    return F.normalize(pooled, dim=-1)


class EncoderQScorer(nn.Module):
    """Fine-tunes the sentence encoder end to end under a `QScorer` head (Memento's classifier)."""

    def __init__(self, encoder: nn.Module, config: ScorerConfig) -> None:
        super().__init__()
        self.encoder = encoder  # a transformers AutoModel (BERT-style: input_ids, attention_mask)
        self.head = QScorer(config)

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        # input_ids, attention_mask: (B, T) -> (B, D)
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return mean_pool(hidden, attention_mask)

    def forward(
        self,
        q_ids: torch.Tensor,
        q_mask: torch.Tensor,
        c_ids: torch.Tensor,
        c_mask: torch.Tensor,
        stats: torch.Tensor,
    ) -> torch.Tensor:
        # q_*: (B, Tq); c_*: (B, Tc); stats: (B, S) -> (B,) logits
        logits: torch.Tensor = self.head(
            self.embed(q_ids, q_mask), self.embed(c_ids, c_mask), stats
        )
        return logits
