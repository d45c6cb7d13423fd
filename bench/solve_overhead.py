"""solve_task orchestration overhead, and 8 concurrent solve_task calls on one server.

    python bench/solve_overhead.py [--latency 0.25] [--runs 10] [--concurrency 8] [--json out.json]

A scripted OpenAI-compatible endpoint on 127.0.0.1 answers every request after a fixed latency and
plays planner and executor: a two-subtask plan, one math-server tool call per subtask (a real stdio
child, toolservers.math), then the final answer: 6 LLM calls and 2 tool calls per solve.

1. loop: `solve()` directly, without memory. overhead = wall − LLM time − tool time, where LLM time
   is measured around each HTTP request by the client and tool time around each MCP call: what is
   left is our orchestration (prompts, parsing, trimming, progress, bookkeeping). Target ≤ 5 %.
2. loop + memory: the same with the real Memory (retrieval before, trajectory stored after; the
   encoder runs twice per solve), in a temporary home.
3. server: `solve_task` through an in-memory fastmcp Client on build_server(), first alone, then
   N calls at once on the same server (one child pool, one bank).
Medians are printed; the numbers depend on the machine (this one: 2 shared CPU cores).
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
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from memento_mcp.agent.llm import OpenAILLM, make_client
from memento_mcp.agent.loop import solve
from memento_mcp.agent.scripted import Script, ScriptedServer, Turn, call, say, say_json
from memento_mcp.agent.toolhub import ToolHub

PLAN = {
    "plan": [{"id": 1, "description": "evaluate 6*7"}, {"id": 2, "description": "evaluate 2**10"}]
}


def planner(request: dict[str, Any]) -> Turn:
    if "Results of the subtasks executed so far" in request["messages"][1]["content"]:
        return say_json({"final_answer": "42 and 1024"})
    return say_json(PLAN)


def executor(request: dict[str, Any]) -> Turn:
    messages = request["messages"]
    if messages[-1]["role"] == "tool":
        return say(f"result: {messages[-1]['content']}")
    expression = "6*7" if "6*7" in messages[1]["content"] else "2**10"
    return call("math_evaluate", expression=expression)


def script() -> Script:
    return Script(
        {"planner": [], "executor": []},
        default=lambda r: (planner if r["model"] == "planner" else executor)(r),
    )


def math_config() -> dict[str, Any]:
    return {
        "mcpServers": {
            "math": {
                "command": sys.executable,
                "args": ["-m", "toolservers.math"],
                "env": {
                    "FASTMCP_LOG_LEVEL": "ERROR",
                    "FASTMCP_SHOW_SERVER_BANNER": "false",
                    "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
                },
            }
        }
    }


def summarise(label: str, usages: list[Any]) -> dict[str, float]:
    wall = [u.wall_s for u in usages]
    overhead = [u.wall_s - u.llm_s - u.tool_s for u in usages]
    steps = [u.llm_calls + u.tool_calls for u in usages]
    loop_only = [o - u.memory_s for o, u in zip(overhead, usages)]
    row = {
        "wall_s": statistics.median(wall),
        "llm_s": statistics.median(u.llm_s for u in usages),
        "tool_s": statistics.median(u.tool_s for u in usages),
        "memory_s": statistics.median(u.memory_s for u in usages),
        "overhead_s": statistics.median(overhead),
        "overhead_pct": statistics.median(100 * o / w for o, w in zip(overhead, wall)),
        "overhead_per_step_ms": statistics.median(1000 * o / s for o, s in zip(overhead, steps)),
        "loop_overhead_pct": statistics.median(100 * o / w for o, w in zip(loop_only, wall)),
        "loop_overhead_per_step_ms": statistics.median(
            1000 * o / s for o, s in zip(loop_only, steps)
        ),
    }
    print(
        f"{label:<22} wall {row['wall_s'] * 1000:7.1f} ms  llm {row['llm_s'] * 1000:7.1f}  "
        f"tool {row['tool_s'] * 1000:6.1f}  memory {row['memory_s'] * 1000:6.1f}  | overhead "
        f"{row['overhead_pct']:5.2f} % ({row['overhead_per_step_ms']:6.2f} ms/step), without memory "
        f"{row['loop_overhead_pct']:.2f} % ({row['loop_overhead_per_step_ms']:.2f} ms/step)"
    )
    return row


async def bench_loop(server: ScriptedServer, runs: int, memory: Any = None) -> list[Any]:
    client = make_client(base_url=server.base_url, api_key="bench")
    planner_llm, executor_llm = (
        OpenAILLM("planner", client=client),
        OpenAILLM("executor", client=client),
    )
    usages = []
    async with ToolHub(math_config()) as hub:
        await hub.call("math_evaluate", {"expression": "1+1"})  # warm the child (sympy import)
        await solve("warm-up", planner=planner_llm, executor=executor_llm, tools=hub, memory=memory)
        for i in range(runs):
            result = await solve(
                f"What are 6*7 and 2**10? (run {i})",
                planner=planner_llm,
                executor=executor_llm,
                tools=hub,
                memory=memory,
            )
            assert result.status == "answered", result.error
            usages.append(result.usage)
    await client.close()
    return usages


async def bench_server(base_url: str, home: Path, runs: int, concurrency: int) -> dict[str, Any]:
    from fastmcp import Client

    from memento_mcp.server import build_server
    from memento_mcp.settings import Settings

    servers = home / "servers.json"
    servers.write_text(json.dumps(math_config()))
    os.environ.update(
        MEMENTO_HOME=str(home / "server"),
        MEMENTO_MCP_SERVERS=str(servers),
        MEMENTO_LLM_BASE_URL=base_url,
        MEMENTO_LLM_API_KEY="bench",
        MEMENTO_PLANNER_MODEL="planner",
        MEMENTO_EXECUTOR_MODEL="executor",
    )
    out: dict[str, Any] = {}
    async with Client(build_server(Settings())) as client:
        await client.call_tool("solve_task", {"task": "warm-up"})
        single = []
        for i in range(runs):
            started = time.perf_counter()
            await client.call_tool("solve_task", {"task": f"What are 6*7 and 2**10? (single {i})"})
            single.append(time.perf_counter() - started)
        out["single_call_wall_ms"] = 1000 * statistics.median(single)
        batches = []
        per_call: list[float] = []
        overheads: list[float] = []
        loop_overheads: list[float] = []
        for b in range(3):

            async def one(i: int, b: int = b) -> None:
                started = time.perf_counter()
                r = await client.call_tool(
                    "solve_task", {"task": f"What are 6*7 and 2**10? (batch {b} #{i})"}
                )
                per_call.append(time.perf_counter() - started)
                u = r.structured_content["usage"]
                overheads.append(100 * (u["wall_s"] - u["llm_s"] - u["tool_s"]) / u["wall_s"])
                loop_overheads.append(
                    100 * (u["wall_s"] - u["llm_s"] - u["tool_s"] - u["memory_s"]) / u["wall_s"]
                )
                assert r.structured_content["status"] == "answered"

            started = time.perf_counter()
            async with anyio.create_task_group() as tg:
                for i in range(concurrency):
                    tg.start_soon(one, i)
            batches.append(time.perf_counter() - started)
        out.update(
            concurrency=concurrency,
            batch_wall_ms=1000 * statistics.median(batches),
            concurrent_call_wall_ms=1000 * statistics.median(per_call),
            concurrent_overhead_pct=statistics.median(overheads),
            concurrent_loop_overhead_pct=statistics.median(loop_overheads),
        )
    print(f"{'server, one call':<28} wall {out['single_call_wall_ms']:7.1f} ms (median of {runs})")
    print(
        f"{f'server, {concurrency} concurrent':<28} batch {out['batch_wall_ms']:7.1f} ms, per call "
        f"{out['concurrent_call_wall_ms']:7.1f} ms, overhead {out['concurrent_overhead_pct']:.2f} %, "
        f"without memory {out['concurrent_loop_overhead_pct']:.2f} % (median over 3 batches)"
    )
    return out


async def main(args: argparse.Namespace) -> dict[str, Any]:
    from memento_mcp.memory import open_memory
    from memento_mcp.settings import Settings

    results: dict[str, Any] = {"latency_s": args.latency, "runs": args.runs}
    print(
        f"scripted LLM latency {args.latency * 1000:.0f} ms; 6 LLM calls + 2 tool calls per solve"
    )
    with (
        ScriptedServer(script(), latency_s=args.latency) as server,
        tempfile.TemporaryDirectory() as tmp,
    ):
        results["loop"] = summarise("loop (no memory)", await bench_loop(server, args.runs))
        memory = open_memory(Settings(home=Path(tmp) / "loop"))
        results["loop_memory"] = summarise(
            "loop + Memory", await bench_loop(server, args.runs, memory)
        )
        memory.close()
        results["server"] = await bench_server(
            server.base_url, Path(tmp), args.runs, args.concurrency
        )
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--latency", type=float, default=0.25, help="seconds per scripted LLM reply"
    )
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    numbers = anyio.run(main, args)
    if args.json:
        args.json.write_text(json.dumps(numbers, indent=2))
