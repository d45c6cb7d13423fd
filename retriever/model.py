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

The wide term also reads a query-level kernel: the outcomes of the training requests whose
queries are near this one (Nadaraya-Watson over query cosines, `kernel_logit`). On Memento's
pairs a row's label is its query's, and the MLP alone did not learn "queries like this get
solved" (held-out AUC 0.634, mean of 10 query splits, where the bare kernel scores 0.662).
The head keeps the training requests' query vectors and outcomes as buffers (the newest
`memory_size`), so the served numpy model (scorer.HeadModel) computes the same term. With it the
head scores 0.673 / 0.651 (split 0 / mean); online it cost about a point of the oracle's reward
(bench/scenarios.py, 32 seeds: generalisation 0.95 against 0.96, k4_unused 0.97 against 0.98),
and k4_unused 0.969 when serving ignored the term: the cost comes through what the MLP learns
beside it. Training the MLP first and the kernel's weight after it (0.637), or hiding the kernel
from half the training rows (0.639), kept the AUC under 0.65.

`EncoderHead` is Memento's full setup: the sentence encoder itself is fine-tuned under the same
head. The caller passes the transformer in, so this file never loads weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

N_WIDE = 3  # cos(q, t), cos(q, p), the query kernel's logit


@dataclass
class HeadConfig:
    embed_dim: int = 384  # all-MiniLM-L6-v2
    hidden: int = 64
    dropout: float = 0.5
    input_dropout: float = 0.0  # on the pair features; L2 (train.py) is the main regulariser
    kernel_temperature: float = 0.1  # of the query kernel's weights exp((cos - 1) / T)
    memory_size: int = 2048
    """Training requests the head keeps for its query kernel (the newest). Serving computes the
    kernel over all of them on every retrieval: ~20 us per 1,000 (50 candidates, numpy)."""

    @property
    def n_features(self) -> int:
        return 6 * self.embed_dim + 2  # pair_features; the kernel feeds the wide term only


def kernel_logit(
    similarity: torch.Tensor, rewards: torch.Tensor, temperature: float
) -> torch.Tensor:
    """(B, M) query cosines to the kept requests, (M,) their outcomes -> (B,) logit of the
    Nadaraya-Watson mean outcome, clipped to [0.01, 0.99]. A -inf cosine leaves a request out;
    with none left the mean is 0.5 (logit 0). scorer.kernel_logit is the same in numpy.

    Temperature 0.1 rather than the bench's 0.15: as a head input it gave held-out AUC 0.651
    against 0.639 (mean of 10 query splits). Shrinking the mean toward the base rate by the
    neighbours' total weight lost (0.637 with one pseudo-neighbour), so there is none."""
    weights = torch.exp((similarity - 1.0) / temperature)  # (B, M) in [0, 1]
    mean = (weights @ rewards + 0.5e-30) / (weights.sum(-1) + 1e-30)
    mean = mean.clamp(0.01, 0.99)
    return torch.log(mean / (1.0 - mean))


def pair_features(q: torch.Tensor, t: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """(B, D) x3 unit vectors -> (B, 6D + 2); the last two columns are the wide term's input."""
    cos_t = (q * t).sum(-1, keepdim=True)  # (B, 1)
    cos_p = (q * p).sum(-1, keepdim=True)  # (B, 1)
    return torch.cat([q, t, p, q * t, q * p, (q - t).abs(), cos_t, cos_p], dim=-1)


class PriorHead(nn.Module):
    """Pair features -> two-layer MLP, plus a linear term on the cosines and the query kernel ->
    one logit per case."""

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
        # the training requests the kernel averages over: set by train_head, saved with the head
        self.register_buffer("memory_q", torch.zeros(0, config.embed_dim))  # (M, D) queries
        self.register_buffer("memory_r", torch.zeros(0))  # (M,) their outcomes

    def set_memory(self, queries: torch.Tensor, rewards: torch.Tensor) -> None:
        self.memory_q, self.memory_r = queries.float(), rewards.float()

    def kernel(self, q: torch.Tensor) -> torch.Tensor:
        """(B, D) queries -> (B,) the kernel's logit over every kept request."""
        return kernel_logit(q @ self.memory_q.T, self.memory_r, self.config.kernel_temperature)

    def forward(
        self, q: torch.Tensor, t: torch.Tensor, p: torch.Tensor, kernel: torch.Tensor | None = None
    ) -> torch.Tensor:
        # q: (B, D) or (D,) broadcast over the cases; t, p: (B, D) -> (B,) logits.
        # kernel: (B,) given in training, where a row's own request must be left out of it.
        if kernel is None:
            kernel = self.kernel(q.detach().reshape(-1, t.shape[-1])).expand(t.shape[0])
        q = q.expand_as(t)
        x = pair_features(q, t, p)  # (B, F)
        wide = torch.cat([x[:, -2:], kernel[:, None]], dim=-1)  # (B, 3)
        logits: torch.Tensor = self.mlp(x).squeeze(-1) + self.wide(wide).squeeze(-1)
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
