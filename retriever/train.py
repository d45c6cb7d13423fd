"""Train the prior head (`memento-mcp retriever train`, and the background job).

Two modes, one shape: data -> model -> Adam -> loop.

- head: frozen sentence vectors, only `PriorHead` learns. Seconds on a CPU, so the online loop
  runs it in a background job after every few labelled outcomes (retriever.job).
- full: Memento's setup, the MiniLM encoder is fine-tuned under the same head. A GPU is used when
  present; on a CPU cap it with `max_steps`.

Each row weighs credit x clipped inverse propensity: a row carries only its share of an outcome
(contract.credit_shares), and the logging policy showed some cases more often than others, so
1/propensity undoes that (clipped at `ips_clip` so one rare draw cannot dominate). The head
trains for a fixed number of epochs under an L2 penalty (see `train_head`).

The head's query kernel (model.kernel_logit) averages the outcomes of the training requests it
keeps (`request_memory`). A training row's own request is left out of its kernel value: with it
in, the feature would carry the row's label and the head would learn to trust it far more than
it deserves on a new query.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from retriever.contract import TrainingSet
from retriever.evaluate import log_loss, predict
from retriever.model import EncoderHead, HeadConfig, PriorHead, kernel_logit


@dataclass
class TrainConfig:
    mode: str = "head"  # head | full
    max_steps: int = 1000
    min_steps: int = 500  # small online sets still get enough updates (200 left a synthetic
    # plan rule at AUC 0.58 on untried cases, 500 reached 0.79; Memento pairs unchanged, 0.616)
    batch_size: int = 256
    lr: float = 1e-3
    wide_lr: float = 3e-2  # the wide term on the cosines and the kernel: 4 weights, they travel
    encoder_lr: float = 2e-5  # full mode: the pretrained encoder moves slowly
    weight_decay: float = 0.01  # AdamW's decoupled decay; full mode only
    l2: float = 1e-3  # head: an L2 penalty on the MLP's weights, the regulariser that held up
    # on Memento's data. 3e-3 left more to the query kernel (model.py) there, held-out AUC 0.664
    # against 0.651 (10 query splits), but the head then learnt less of which plans work: in
    # tests/retriever/test_ope.py's world its policy value fell from over 0.65 to 0.63.
    warmup_steps: int = 50
    epochs: float = 20.0  # head: passes over the data, capped by max_steps
    eval_interval: int = 50  # full: log every this many steps
    threads: int | None = 1  # torch threads while training; None leaves torch's setting alone
    ips_clip: float = 10.0  # cap on 1/propensity; 1.0 turns IPS weighting off
    seed: int = 1337


def get_lr(step: int, total: int, config: TrainConfig, base_lr: float) -> float:
    """Linear warmup, then cosine decay to a tenth (nanoGPT's schedule)."""
    warmup = min(config.warmup_steps, total // 10)
    if step < warmup:
        return base_lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base_lr * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress))))


def sample_weights(credits: np.ndarray, propensities: np.ndarray, clip: float) -> np.ndarray:
    """credit x clipped 1/propensity, normalised to mean 1 so the learning rate keeps its meaning."""
    w = credits.astype(np.float64) / np.clip(propensities.astype(np.float64), 1.0 / clip, 1.0)
    return (w / max(w.mean(), 1e-12)).astype(np.float32) if len(w) else w.astype(np.float32)


def request_memory(data: TrainingSet, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The newest `size` requests as (M, D) query vectors and (M,) mean outcomes, and each row's
    request's place among them (-1 where it was not kept)."""
    requests, row_request = np.unique(np.array(data.request_ids, dtype=object), return_inverse=True)
    n = len(requests)
    newest = np.full(n, -1, np.int64)
    np.maximum.at(newest, row_request, data.impression_ids)
    first = np.zeros(n, np.int64)
    first[row_request] = np.arange(len(data))  # a row of each request: they share the query
    rewards = np.bincount(row_request, data.rewards, n) / np.bincount(row_request, minlength=n)
    kept = np.sort(np.argsort(-newest, kind="stable")[:size])
    slot = np.full(n, -1, np.int64)
    slot[kept] = np.arange(len(kept))
    return data.query_vecs[first[kept]], rewards[kept].astype(np.float32), slot[row_request]


def leave_one_out_kernel(
    data: TrainingSet, memory_q: np.ndarray, memory_r: np.ndarray, slots: np.ndarray,
    config: HeadConfig,
) -> np.ndarray:  # fmt: skip
    """(N,) each training row's kernel logit over the kept requests other than its own."""
    out = np.empty(len(data), np.float32)
    q_t, r_t = torch.from_numpy(memory_q), torch.from_numpy(memory_r)
    for s in range(0, len(data), 2048):  # (2048, M) similarities at a time
        similarity = torch.from_numpy(data.query_vecs[s : s + 2048]) @ q_t.T
        own = slots[s : s + 2048]
        rows = np.flatnonzero(own >= 0)
        similarity[rows, own[rows]] = -math.inf  # the row's own request
        out[s : s + 2048] = kernel_logit(similarity, r_t, config.kernel_temperature).numpy()
    return out


def get_batch(
    data: TrainingSet, weights: np.ndarray, kernel: np.ndarray, batch_size: int,
    rng: np.random.Generator,
) -> tuple[torch.Tensor, ...]:  # fmt: skip
    idx = rng.integers(0, len(data), size=min(batch_size, len(data)))
    return (
        torch.from_numpy(data.query_vecs[idx]),  # (B, D)
        torch.from_numpy(data.case_vecs[idx]),  # (B, D)
        torch.from_numpy(data.plan_vecs[idx]),  # (B, D)
        torch.from_numpy(kernel[idx]),  # (B,)
        torch.from_numpy(data.rewards[idx]),  # (B,)
        torch.from_numpy(weights[idx]),  # (B,)
    )


def estimate_loss(model: PriorHead, data: TrainingSet) -> float | None:
    """Unweighted log loss on `data` (lower is better). Its kernel term keeps each row's own
    request in, so on the training rows this is optimistic."""
    value = log_loss(data.rewards, predict(model, data))
    model.train()
    return value


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run torch ops on `n` threads, then restore. On a busy 2-core box two threads spin against
    each other (measured: 20 ms/step on one thread, 450 ms/step on two), and one core stays free
    for the retrievals that run beside a background retrain."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_head(
    data: TrainingSet,
    config: TrainConfig | None = None,
    head_config: HeadConfig | None = None,
) -> tuple[PriorHead, dict[str, Any]]:
    """Fit a PriorHead on frozen vectors; returns the model (eval mode) and a run summary.

    A fixed number of epochs under an L2 penalty, no inner validation split: online there is
    nobody to tune the stopping point, and on Memento's pairs an inner split's noisy loss stopped
    too early (held-out AUC 0.60 against 0.64 for the fixed schedule, 5 query splits).
    """
    config = config or TrainConfig()
    head_config = head_config or HeadConfig(embed_dim=data.query_vecs.shape[1])
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    t0 = time.perf_counter()
    weights = sample_weights(data.credits, data.propensities, config.ips_clip)
    steps = min(
        config.max_steps,
        max(config.min_steps, math.ceil(config.epochs * len(data) / config.batch_size)),
    )

    memory_q, memory_r, slots = request_memory(data, head_config.memory_size)
    kernel = leave_one_out_kernel(data, memory_q, memory_r, slots, head_config)
    model = PriorHead(head_config)
    model.set_memory(torch.from_numpy(memory_q), torch.from_numpy(memory_r))
    optimizer = torch.optim.Adam(
        [
            {"params": model.mlp.parameters(), "base_lr": config.lr},
            {"params": model.wide.parameters(), "base_lr": config.wide_lr},
        ]
    )
    decayed = [
        p
        for name, p in model.named_parameters()
        if name.startswith("mlp") and name.endswith("weight")
    ]
    model.train()
    with torch_threads(config.threads):
        for step in range(1, steps + 1):
            for group in optimizer.param_groups:
                group["lr"] = get_lr(step, steps, config, group["base_lr"])
            q, t, p, k, y, w = get_batch(data, weights, kernel, config.batch_size, rng)
            loss = (
                F.binary_cross_entropy_with_logits(model(q, t, p, k), y, reduction="none") * w
            ).mean()
            loss = loss + config.l2 * sum((p**2).sum() for p in decayed)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
        train_loss = estimate_loss(model, data)
    model.eval()
    summary = {
        "mode": "head",
        "steps": steps,
        "train_loss": train_loss,
        "n_train": len(data),
        "seconds": time.perf_counter() - t0,
        "train_config": asdict(config),
    }
    return model, summary


# ----------------------------------------------------------------------------- full fine-tune


def train_full(
    queries: list[str],
    cases: list[str],
    rewards: np.ndarray,
    encoder: torch.nn.Module,
    tokenizer: Any,
    config: TrainConfig,
    head_config: HeadConfig | None = None,
    log: Any = print,
) -> tuple[EncoderHead, dict[str, Any]]:
    """Fine-tune `encoder` and a head together on text pairs (Memento's classifier).

    No inner early stopping here: a full run is an offline job with a fixed `max_steps`, judged
    on the held-out split by the caller.
    """
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model = EncoderHead(encoder, head_config or HeadConfig()).to(device)
    optimizer = torch.optim.AdamW(
        [
            {"params": model.encoder.parameters(), "base_lr": config.encoder_lr},
            {"params": model.head.parameters(), "base_lr": config.lr},
        ],
        weight_decay=config.weight_decay,
    )
    y_all = torch.from_numpy(rewards)
    t0 = time.perf_counter()
    model.train()
    step, loss_ema = 0, None
    for step in range(1, config.max_steps + 1):
        for group in optimizer.param_groups:
            group["lr"] = get_lr(step, config.max_steps, config, group["base_lr"])
        idx = rng.integers(0, len(queries), size=config.batch_size)
        q = tokenizer(
            [queries[i] for i in idx],
            padding=True,
            truncation=True,
            max_length=128,
            return_tensors="pt",
        )
        c = tokenizer(
            [cases[i] for i in idx],
            padding=True,
            truncation=True,
            max_length=128,
            return_tensors="pt",
        )
        logits = model(
            q["input_ids"].to(device),
            q["attention_mask"].to(device),
            c["input_ids"].to(device),
            c["attention_mask"].to(device),
        )
        loss = F.binary_cross_entropy_with_logits(logits, y_all[idx].to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        loss_ema = loss.item() if loss_ema is None else 0.9 * loss_ema + 0.1 * loss.item()
        if step % config.eval_interval == 0:
            log(
                f"step {step}/{config.max_steps} loss {loss_ema:.4f} ({time.perf_counter() - t0:.0f}s)"
            )
    model.eval()
    return model, {
        "mode": "full",
        "steps": step,
        "device": device,
        "train_loss": loss_ema,
        "n_train": len(queries),
        "seconds": time.perf_counter() - t0,
        "train_config": asdict(config),
    }


@torch.no_grad()
def embed_texts(
    model: EncoderHead, tokenizer: Any, texts: list[str], batch_size: int = 64
) -> np.ndarray:
    """Vectors from the fine-tuned encoder, (N, D) float32."""
    device = next(model.parameters()).device
    out = []
    for s in range(0, len(texts), batch_size):
        batch = tokenizer(
            texts[s : s + batch_size],
            padding=True,
            truncation=True,
            max_length=128,
            return_tensors="pt",
        )
        out.append(
            model.embed(batch["input_ids"].to(device), batch["attention_mask"].to(device))
            .cpu()
            .numpy()
        )
    return np.concatenate(out).astype(np.float32) if out else np.empty((0, 0), np.float32)
