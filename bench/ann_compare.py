"""Which ANN library: usearch, hnswlib, faiss-cpu (HNSW) side by side on the same vectors.

    python bench/ann_compare.py --n 100000

For each: build time (2 threads), recall@10 against exact cosine, single-query latency p50,
memory of the index, save/load time, and whether it removes items, filters inside the search
and opens memory-mapped. sqlite-vec is measured by bench/ann_sqlite_vec.py (it needs a Python
whose sqlite3 loads extensions). Writes bench/out/ann_compare.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as memento_mcp sets it; before numpy loads

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _synthetic import query_texts, starter_vectors, synthetic_chunks  # noqa: E402

from memento_mcp.retrieval.encoder import shared_encoder  # noqa: E402

K = 10


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return 0.0


def recall(found: list[np.ndarray], truth: np.ndarray) -> float:
    return float(np.mean([len(set(f[:K].tolist()) & set(t.tolist())) / K for f, t in zip(found, truth)]))


def timed(fn, queries):
    out, times = [], []
    for q in queries:
        t = time.perf_counter()
        out.append(fn(q))
        times.append(time.perf_counter() - t)
    return out, statistics.median(times) * 1000, float(np.percentile(times, 99) * 1000)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--libs", nargs="+", default=["usearch", "usearch-f16", "hnswlib", "faiss"])
    args = parser.parse_args()
    base = starter_vectors()
    data = np.concatenate(list(synthetic_chunks(base, args.n)))
    keys = np.arange(1, args.n + 1, dtype=np.int64)
    queries = shared_encoder().encode(query_texts(100))
    np.save(Path(__file__).parent / "out" / f"ann_data_{args.n}.npy", data)
    np.save(Path(__file__).parent / "out" / "ann_queries.npy", queries)
    truth = np.argsort(-(queries @ data.T), axis=1)[:, :K] + 1
    _, exact_ms, _ = timed(lambda q: np.argpartition(-(data @ q), K)[:K], queries)
    results: dict[str, object] = {"n": args.n, "exact_numpy_ms_p50": exact_ms, "libs": {}}
    print(f"exact numpy matvec p50 {exact_ms:.2f} ms")
    tmp = Path(tempfile.mkdtemp())
    for lib in args.libs:
        before = rss_mb()
        t0 = time.perf_counter()
        if lib.startswith("usearch"):
            from usearch.index import Index

            index = Index(ndim=384, metric="ip", dtype="f16" if lib.endswith("f16") else "f32",
                          connectivity=16, expansion_add=128, expansion_search=64)
            index.add(keys, data, threads=2)
            build = time.perf_counter() - t0
            search = lambda q: index.search(q, K).keys  # noqa: E731
            path = tmp / f"{lib}.usearch"
            ts = time.perf_counter(); index.save(str(path)); save = time.perf_counter() - ts
            ts = time.perf_counter(); Index.restore(str(path)); load = time.perf_counter() - ts
            ts = time.perf_counter(); Index.restore(str(path), view=True); view = time.perf_counter() - ts
            ts = time.perf_counter(); index.remove(keys[:1000]); remove_ms = (time.perf_counter() - ts)
            features = {"remove": True, "filter_in_search": "no (one index per namespace instead)",
                        "mmap_open": True}
        elif lib == "hnswlib":
            import hnswlib

            index = hnswlib.Index(space="ip", dim=384)
            index.init_index(max_elements=args.n, ef_construction=128, M=16, allow_replace_deleted=True)
            index.set_num_threads(2)
            index.add_items(data, keys)
            index.set_ef(64)
            index.set_num_threads(1)
            build = time.perf_counter() - t0
            search = lambda q: index.knn_query(q, K)[0][0]  # noqa: E731
            path = tmp / "hnsw.bin"
            ts = time.perf_counter(); index.save_index(str(path)); save = time.perf_counter() - ts
            ts = time.perf_counter(); other = hnswlib.Index(space="ip", dim=384); other.load_index(str(path)); load = time.perf_counter() - ts
            view = None
            ts = time.perf_counter()
            for key in keys[:1000]:
                index.mark_deleted(int(key))
            remove_ms = time.perf_counter() - ts
            features = {"remove": "mark_deleted", "filter_in_search": "python callback per node",
                        "mmap_open": False}
        else:
            import faiss

            faiss.omp_set_num_threads(2)
            hnsw = faiss.IndexHNSWFlat(384, 16, faiss.METRIC_INNER_PRODUCT)
            hnsw.hnsw.efConstruction = 128
            index = faiss.IndexIDMap2(hnsw)
            index.add_with_ids(data, keys)
            hnsw.hnsw.efSearch = 64
            faiss.omp_set_num_threads(1)
            build = time.perf_counter() - t0
            search = lambda q: index.search(q[None, :], K)[1][0]  # noqa: E731
            path = tmp / "faiss.index"
            ts = time.perf_counter(); faiss.write_index(index, str(path)); save = time.perf_counter() - ts
            ts = time.perf_counter(); faiss.read_index(str(path)); load = time.perf_counter() - ts
            try:
                ts = time.perf_counter(); faiss.read_index(str(path), faiss.IO_FLAG_MMAP); view = time.perf_counter() - ts
            except Exception:
                view = None
            try:
                index.remove_ids(faiss.IDSelectorRange(1, 1001)); remove_ms = None
            except Exception:
                remove_ms = None
            features = {"remove": "no (HNSW cannot remove)", "filter_in_search": "IDSelector",
                        "mmap_open": view is not None}
        memory = rss_mb() - before
        found, p50, p99 = timed(search, queries)
        row = {"build_s": build, "recall@10": recall(found, truth), "search_ms_p50": p50,
               "search_ms_p99": p99, "rss_delta_mb": memory, "file_mb": os.path.getsize(path) / 2**20,
               "save_s": save, "load_s": load, "view_s": view,
               "remove_1000_s": remove_ms, **features}
        results["libs"][lib] = row  # type: ignore[index]
        print(lib, json.dumps(row))
        del index
    (Path(__file__).parent / "out" / f"ann_compare_{args.n}.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
