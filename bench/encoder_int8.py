"""The int8 (dynamically quantised) encoder against fp32: speed, and whether retrieval agrees.

    python bench/encoder_int8.py

Speed: one query at a time (p50) and a batch import (texts/s) of the 1,278 starter tasks.
Agreement: cosine between each text's fp32 and int8 vectors, and the overlap of the top-10
starter cases that each model retrieves for 100 reworded queries (each model searching its own
vectors of the bank). Writes bench/out/encoder_int8.json.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from _synthetic import query_texts, starter_tasks  # noqa: E402

from memento_mcp.retrieval.encoder import Encoder  # noqa: E402


def main() -> None:
    tasks, queries = starter_tasks(), query_texts(100)
    results: dict[str, object] = {"load_average": round(os.getloadavg()[0], 1)}
    bank: dict[str, np.ndarray] = {}
    asked: dict[str, np.ndarray] = {}
    for name, encoder in (("fp32", Encoder()), ("int8", Encoder(quantized=True))):
        encoder.load()
        encoder.encode_one("warm up")
        times = []
        for query in queries:
            start = time.perf_counter()
            encoder.encode_one(query)
            times.append(time.perf_counter() - start)
        start = time.perf_counter()
        bank[name] = encoder.encode(tasks)
        batch_s = time.perf_counter() - start
        asked[name] = encoder.encode(queries)
        results[name] = {"query_p50_ms": round(statistics.median(times) * 1000, 2),
                         "batch_texts_per_s": round(len(tasks) / batch_s, 1)}
        print(name, results[name], flush=True)
    cosines = np.sum(bank["fp32"] * bank["int8"], axis=1)
    overlap = []
    for q32, q8 in zip(asked["fp32"], asked["int8"], strict=True):
        top32 = set(np.argsort(-(bank["fp32"] @ q32))[:10].tolist())
        top8 = set(np.argsort(-(bank["int8"] @ q8))[:10].tolist())
        overlap.append(len(top32 & top8) / 10)
    results["agreement"] = {"cosine_mean": round(float(cosines.mean()), 4),
                            "cosine_min": round(float(cosines.min()), 4),
                            "top10_overlap_mean": round(float(np.mean(overlap)), 4),
                            "top1_same": round(float(np.mean([
                                np.argmax(bank["fp32"] @ a) == np.argmax(bank["int8"] @ b)
                                for a, b in zip(asked["fp32"], asked["int8"], strict=True)
                            ])), 4)}
    print(results["agreement"])
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / "encoder_int8.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
