"""sqlite-vec (vec0, exact KNN inside SQLite) on bench/ann_compare.py's vectors.

    /path/to/python-with-loadable-sqlite bench/ann_sqlite_vec.py --n 100000

Needs numpy and sqlite-vec in an interpreter whose sqlite3 loads extensions (Debian's python3;
this project's pyenv build cannot). Prints one JSON row like ann_compare.py's.
"""

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import sqlite_vec

parser = argparse.ArgumentParser()
parser.add_argument("--n", type=int, default=100_000)
args = parser.parse_args()
out = Path(__file__).parent / "out"
data = np.load(out / f"ann_data_{args.n}.npy")
queries = np.load(out / "ann_queries.npy")
truth = np.argsort(-(queries @ data.T), axis=1)[:, :10] + 1
db = sqlite3.connect(Path(tempfile.mkdtemp()) / "vec.db")
db.enable_load_extension(True)
sqlite_vec.load(db)
db.execute("CREATE VIRTUAL TABLE v USING vec0(embedding float[384] distance_metric=cosine, ns text)")
start = time.perf_counter()
with db:
    db.executemany("INSERT INTO v(rowid, embedding, ns) VALUES (?, ?, 'default')",
                   ((i + 1, data[i].tobytes()) for i in range(len(data))))
build = time.perf_counter() - start
times, found = [], []
for q in queries:
    t = time.perf_counter()
    rows = db.execute("SELECT rowid FROM v WHERE embedding MATCH ? AND k = 10 AND ns = 'default'",
                      (q.astype(np.float32).tobytes(),)).fetchall()
    times.append(time.perf_counter() - t)
    found.append([r[0] for r in rows])
recall = float(np.mean([len(set(f) & set(t.tolist())) / 10 for f, t in zip(found, truth)]))
print(json.dumps({"sqlite-vec": {"build_s": build, "recall@10": recall,
                                 "search_ms_p50": statistics.median(times) * 1000,
                                 "search_ms_p99": float(np.percentile(times, 99) * 1000),
                                 "remove": True, "filter_in_search": "metadata column in vec0",
                                 "mmap_open": "SQLite pages", "exact": True}}))
