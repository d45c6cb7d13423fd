"""Offline jobs behind the CLI: train and evaluate on Memento pairs, head or full fine-tune.

Kept apart from cli.py so the same jobs run from tests, benches and scripts (house style: core
first, protocol last). Held-out numbers are always on a split by query.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from retriever.checkpoint import load_head, read_checkpoint, save_checkpoint
from retriever.contract import TrainingSet
from retriever.data import Encode, Pairs, data_hash, load_pairs, read_pairs
from retriever.evaluate import evaluate, metrics_for_scores, predict
from retriever.model import HeadConfig
from retriever.train import TrainConfig, embed_texts, train_full, train_head
from retriever.versions import new_version


def cached_encoder(cache_dir: Path | None) -> Encode:
    """The shared MiniLM encoder, memoised on disk per list of texts (pairs files re-encode often)."""
    from memento_mcp.retrieval.encoder import ENCODER_NAME, shared_encoder

    def encode(texts: list[str]) -> np.ndarray:
        if cache_dir is None:
            return shared_encoder().encode(texts)
        key = hashlib.sha256("\0".join([ENCODER_NAME, *texts]).encode()).hexdigest()[:24]
        path = cache_dir / f"vectors-{key}.npy"
        if path.exists():
            cached: np.ndarray = np.load(path)
            return cached
        vecs = shared_encoder().encode(texts)
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, vecs)
        os.replace(tmp, path)
        return vecs

    return encode


def head_on_pairs(
    pairs: Path,
    encode: Encode,
    *,
    checkpoint_dir: Path | None = None,
    train_config: TrainConfig | None = None,
    seeds: tuple[int, ...] = (0,),
    fraction: float = 0.2,
) -> dict[str, Any]:
    """Train a head on each query split's training side, report held-out metrics (mean over seeds).

    With `checkpoint_dir`, the first split's head is saved there as a versioned checkpoint.
    """
    runs = []
    for i, seed in enumerate(seeds):
        data, held = load_pairs(pairs, encode, fraction, seed)
        train, test = data.take(~held), data.take(held)
        config = HeadConfig(embed_dim=data.query_vecs.shape[1])
        model, summary = train_head(train, train_config, config)
        metrics = evaluate(model, test) | {
            "split_seed": seed,
            "train_seconds": round(summary["seconds"], 3),
        }
        if checkpoint_dir is not None and i == 0:
            version = new_version()
            path = save_checkpoint(
                checkpoint_dir / f"{version}.pt", model, config,
                version=version, metrics=metrics, data_hash=data_hash(train), step=summary["steps"],
            )  # fmt: skip
            metrics |= {"version": version, "checkpoint": str(path)}
        runs.append(metrics)
    return summarise(runs) | {"mode": "head", "pairs": str(pairs)}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The first run's numbers, plus mean and std of AUCs when several splits ran."""
    out = dict(runs[0])
    if len(runs) > 1:
        for key in ("auc", "baseline_cosine_auc"):
            values = [r[key] for r in runs if r[key] is not None]
            out[f"{key}_mean"] = float(np.mean(values))
            out[f"{key}_std"] = float(np.std(values))
        out["splits"] = [
            {
                "seed": r["split_seed"],
                "auc": r["auc"],
                "baseline_cosine_auc": r["baseline_cosine_auc"],
            }
            for r in runs
        ]
    return out


def evaluate_checkpoint(
    path: Path, pairs: Path, encode: Encode, fraction: float = 0.2, seed: int = 0
) -> dict[str, Any]:
    """Held-out metrics of a saved head or full model on the query split of `pairs`."""
    if read_checkpoint(path).get("kind", "head") == "full":
        return _evaluate_full_checkpoint(path, pairs, encode, fraction, seed) | {
            "checkpoint": str(path)
        }
    data, held = load_pairs(pairs, encode, fraction, seed)
    test = data.take(held)
    model, _ = load_head(path)
    return evaluate(model, test) | {"checkpoint": str(path), "split_seed": seed}


def load_encoder(model_dir: Path | None = None) -> tuple[Any, Any]:
    """A trainable float32 copy of MiniLM (tokenizer, model), by default the packaged one; never downloads."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer

    if model_dir is None:
        from memento_mcp.retrieval.encoder import _packaged_model_dir

        model_dir = _packaged_model_dir()
    return AutoTokenizer.from_pretrained(model_dir), AutoModel.from_pretrained(model_dir).float()


def full_on_pairs(
    pairs: Path,
    encode: Encode,
    *,
    checkpoint_dir: Path | None,
    train_config: TrainConfig,
    fraction: float = 0.2,
    seed: int = 0,
    log: Any = print,
    model_dir: Path | None = None,
) -> dict[str, Any]:
    """Memento's setup: fine-tune MiniLM + head on the training queries, evaluate on held-out ones.

    Held-out vectors come from the fine-tuned encoder; the cosine baseline stays the frozen
    encoder's.
    """
    frozen, held = load_pairs(pairs, encode, fraction, seed)
    raw = read_pairs(pairs)
    tokenizer, encoder = load_encoder(model_dir)
    train_idx = np.flatnonzero(~held)
    config = HeadConfig(embed_dim=frozen.query_vecs.shape[1])
    model, summary = train_full(
        [raw.queries[i] for i in train_idx],
        [raw.cases[i] for i in train_idx],
        frozen.rewards[train_idx],
        encoder,
        tokenizer,
        train_config,
        config,
        log=log,
    )
    test = frozen.take(held)
    metrics = metrics_for_scores(
        test, _full_scores(model, tokenizer, test, raw, np.flatnonzero(held))
    )
    metrics |= {"mode": "full", "steps": summary["steps"], "device": summary["device"],
                "train_seconds": round(summary["seconds"], 1), "split_seed": seed}  # fmt: skip
    if checkpoint_dir is not None:
        version = new_version()
        path = save_checkpoint(
            checkpoint_dir / f"{version}-full.pt", model, config, version=version, metrics=metrics,
            data_hash=data_hash(frozen.take(~held)), step=summary["steps"], kind="full",
        )  # fmt: skip
        metrics |= {"version": version, "checkpoint": str(path)}
    return metrics


def _full_scores(
    model: Any, tokenizer: Any, frozen: TrainingSet, raw: Pairs, rows: np.ndarray
) -> np.ndarray:
    """P(reward) from a fine-tuned model: its own encoder re-embeds the held-out texts."""
    model.cpu()
    cases = embed_texts(model, tokenizer, [raw.cases[i] for i in rows])
    tuned = replace(
        frozen,
        query_vecs=embed_texts(model, tokenizer, [raw.queries[i] for i in rows]),
        case_vecs=cases,
        plan_vecs=cases,
    )
    return predict(model.head, tuned)


def _evaluate_full_checkpoint(
    path: Path, pairs: Path, encode: Encode, fraction: float, seed: int
) -> dict[str, Any]:
    from retriever.model import EncoderHead

    payload = read_checkpoint(path)
    tokenizer, encoder = load_encoder()
    model = EncoderHead(encoder, HeadConfig(**payload["config"]))
    model.load_state_dict(payload["state_dict"])
    model.eval()
    frozen, held = load_pairs(pairs, encode, fraction, seed)
    rows = np.flatnonzero(held)
    return metrics_for_scores(
        frozen.take(held),
        _full_scores(model, tokenizer, frozen.take(held), read_pairs(pairs), rows),
    )
