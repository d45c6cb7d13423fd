"""The prior head: P(help | query, case task, case plan) for a case that has no evidence yet.

Retrieval (retriever.policy) learns each case's value from its own outcomes; this model only
supplies the prior mean that a case without outcomes starts from. It must therefore generalise
from cases that were tried to cases that were not: "plans like this worked for queries like
that". So it reads the query `q`, the case's task `t` and the case's plan `p` (frozen sentence
vectors) and nothing from the case's record: a feature such as the case's success rate lets the
head learn "tried often = bad" from a logging policy's quirks, and positive outcomes then
demoted cases (issue 9).

Features [q, t, p, q*t, q*p, |q-t|, cos(q,t), cos(q,p)] are the sentence-pair recipe (InferSent,
SBERT's classification head) applied to both halves of the case. A two-layer MLP reads them all;
a linear ("wide") term on the two cosines carries similarity straight to the logit.

`EncoderHead` is Memento's full setup: the sentence encoder itself is fine-tuned under the same
head. The caller passes the transformer in, so this file never loads weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

N_WIDE = 2  # cos(q, t), cos(q, p)


@dataclass
class HeadConfig:
    embed_dim: int = 384  # all-MiniLM-L6-v2
    hidden: int = 64
    dropout: float = 0.5
    input_dropout: float = 0.0  # on the pair features; L2 (train.py) is the main regulariser

    @property
    def n_features(self) -> int:
        return 6 * self.embed_dim + N_WIDE


def pair_features(q: torch.Tensor, t: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """(B, D) x3 unit vectors -> (B, 6D + 2); the last two columns are the wide term's input."""
    cos_t = (q * t).sum(-1, keepdim=True)  # (B, 1)
    cos_p = (q * p).sum(-1, keepdim=True)  # (B, 1)
    return torch.cat([q, t, p, q * t, q * p, (q - t).abs(), cos_t, cos_p], dim=-1)


class PriorHead(nn.Module):
    """Pair features -> two-layer MLP, plus a linear term on the cosines -> one logit per case."""

    def __init__(self, config: HeadConfig) -> None:
        super().__init__()
        self.config = config
        self.mlp = nn.Sequential(
            nn.Dropout(config.input_dropout),
            nn.Linear(config.n_features, config.hidden),
            nn.GELU(approximate="tanh"),  # the tanh form, so serving can run it in numpy
            nn.Dropout(config.dropout),
            nn.Linear(config.hidden, 1),
        )
        self.wide = nn.Linear(N_WIDE, 1)

    def forward(self, q: torch.Tensor, t: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        # q: (B, D) or (D,) broadcast over the cases; t, p: (B, D) -> (B,) logits
        q = q.expand_as(t)
        x = pair_features(q, t, p)  # (B, F)
        logits: torch.Tensor = self.mlp(x).squeeze(-1) + self.wide(x[:, -N_WIDE:]).squeeze(-1)
        return logits


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Sentence-transformers' pooling: the mean over real tokens, L2-normalised."""
    # hidden: (B, T, D); mask: (B, T)
    m = mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)  # (B, D)
    return F.normalize(pooled, dim=-1)


class EncoderHead(nn.Module):
    """Fine-tunes the sentence encoder end to end under a `PriorHead` (Memento's classifier).

    It encodes the case's task text only, which serves as both the task and the plan.
    """

    def __init__(self, encoder: nn.Module, config: HeadConfig) -> None:
        super().__init__()
        self.encoder = encoder  # a transformers AutoModel (BERT-style: input_ids, attention_mask)
        self.head = PriorHead(config)

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        # input_ids, attention_mask: (B, T) -> (B, D)
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return mean_pool(hidden, attention_mask)

    def forward(
        self, q_ids: torch.Tensor, q_mask: torch.Tensor, c_ids: torch.Tensor, c_mask: torch.Tensor
    ) -> torch.Tensor:
        # q_*: (B, Tq); c_*: (B, Tc) -> (B,) logits
        c = self.embed(c_ids, c_mask)
        logits: torch.Tensor = self.head(self.embed(q_ids, q_mask), c, c)
        return logits
