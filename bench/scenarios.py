"""Does the retriever learn from outcomes? A scenario suite run through the real MCP tools (issue 9).

    python bench/scenarios.py [--scenarios all] [--seeds 5] [--steps 1.0] [--workers 2]

The simulation (read this before quoting the numbers):

- Each run is one scenario, one policy and one seed, on a fresh case bank (its own MEMENTO_HOME)
  served by `build_server(Settings())` through an in-memory `fastmcp.Client`. The cases are stored
  with `record_outcome(task, plan, answer, reward=1.0)`, so neither text nor stored reward says
  which one helps. Then, for each query of the stream: `retrieve_cases(query, k)` → the agent
  follows the top-ranked case → the reward is drawn from that case's hidden chance of solving the
  query → `record_outcome(request_id, reward, used_case_ids=[followed])` (k4_unused: without
  used_case_ids). No new case is stored, so every policy faces the same candidates.
- If the server abstains (`abstain: true`, or no case returned), the agent works without a case
  and succeeds with the documented chance NO_CASE (0.2; 0.5 in no_signal, where nothing matters).
- Policies: learned = the server's defaults. cosine = `MEMENTO_RANKING=similarity` (plain cosine
  ranking, no learning); on a server without that setting, the same server with its learned
  scorer detached. random = a uniformly random case among the query's on-topic stored cases,
  picked with hidden knowledge of the topic, no server. oracle = always the on-topic case with
  the best hidden chance, no server. All four see the same queries and the same uniform draws per
  step (reward = draw < chance), so their differences are not reward noise.
- Scenarios (scenario_worlds.py): similar_bad: 30 hand-written tasks, the near-duplicate case's
  plan works 0.15 and a paraphrase's 0.9, k=1. drift: 6 families x 4 near-duplicate cases with
  their own plans, one good (0.85) and three bad (0.25), another family's case 0.05; halfway the
  good case turns bad and a bad one good. namespaces: the same cases in namespaces a and b, with
  opposite plans working (0.85 vs 0.2), queries alternating. generalisation: 10 families whose
  plans are of a cross-checking kind (0.85) or an answer-from-memory kind (0.25), worded per
  family; 300 outcomes on families 1-6, then 100 on families 7-10, never tried. no_signal: every
  reward a fair coin. k4_used / k4_unused: the drift world without the drift.
- Numbers per run: `reward` = mean drawn reward over the last 100 outcomes; `expected` = mean
  hidden chance of the followed cases there (what reward estimates, without its noise);
  `ratio` = expected / the oracle's expected over the same outcomes (issue 9's target: >= 0.90).
  `gain30` = mean hidden chance over outcomes 21-30 minus over outcomes 1-10; `vs_cos30` = mean
  hidden chance over outcomes 1-30 minus cosine's on the same seed ("a visible improvement within
  30 outcomes" shows as either being > 0; in similar_bad, outcomes 1-30 ask each task once, so
  there only what one task's outcome teaches about the others can show). `on_topic` = share of shown cases from the query's own
  family (and namespace); `cos_top` = share of requests whose top case is the most similar one
  shown. Scenario notes: drift `after30` = ratio over the 30 outcomes after the change;
  generalisation `good_kind` = share of the last 100 (families 7-10) whose top case has a plan of
  the good kind; namespaces `a`/`b` = each namespace's ratio over the last 100; `abstain` = count.
- The table shows the median over seeds and, in brackets, the worst seed. The PNG shows the
  expected reward (hidden chance of the followed case; drawn rewards are too noisy at 5 seeds),
  mean over seeds, moving average of 25; a dotted line marks the drift or the unseen families.
- The learned server retrains in background threads, so its numbers depend a little on how busy
  the CPU is (a retrain that finishes later serves later); cosine, random and oracle do not.

Writes bench/out/scenarios.json and bench/out/scenarios.png.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from scenario_worlds import BUILDERS, World, build, query_variants

OUT = Path(__file__).parent / "out"
SERVER_POLICIES = ("learned", "cosine")
POLICIES = ("learned", "cosine", "random", "oracle")


# -- one run -----------------------------------------------------------------------------------


def draws(seed: int, steps: int) -> list[float]:
    """The uniform draw of each step, shared by all policies (reward = draw < chance)."""
    rng = random.Random(f"draws-{seed}")
    return [rng.random() for _ in range(steps)]


def init_worker() -> None:
    """Each worker gets its own MEMENTO_HOME before anything of the server is imported."""
    for name in [n for n in os.environ if n.startswith("MEMENTO_")]:
        del os.environ[name]
    os.environ["MEMENTO_HOME"] = tempfile.mkdtemp(prefix="memento-scn-worker-")
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # two workers share two cores


def run_job(job: tuple[str, str, int, float]) -> dict[str, Any]:
    scenario, policy, seed, scale = job
    world = build(scenario, seed, scale)
    u = draws(seed, len(world.steps))
    t0 = time.perf_counter()
    if policy in SERVER_POLICIES:
        steps = asyncio.run(serve_world(world, policy, u))
    else:
        steps = simulate(world, policy, u, random.Random(f"{policy}-{seed}"))
    return {
        "scenario": scenario,
        "policy": policy,
        "seed": seed,
        "seconds": time.perf_counter() - t0,
        "steps": steps,
    }


def simulate(world: World, policy: str, u: list[float], rng: random.Random) -> list[dict[str, Any]]:
    """random and oracle: no server, they read the hidden chances."""
    out = []
    for t in range(len(world.steps)):
        topical = world.topical(t)
        i = max(topical, key=lambda j: world.p(j, t)) if policy == "oracle" else rng.choice(topical)
        out.append(step_record(world, t, u[t], i, [i]))
    return out


def step_record(
    world: World,
    t: int,
    u: float,
    followed: int | None,
    shown: list[int],
    cos_top: bool | None = None,
) -> dict[str, Any]:
    chance = world.no_case if followed is None else world.p(followed, t)
    return {
        "chance": chance,
        "reward": float(u < chance),
        "oracle": world.oracle(t),
        "abstain": followed is None,
        "on_topic": sum(world.on_topic(i, t) for i in shown) / len(shown) if shown else None,
        "cos_top": cos_top,
        "kind": None if followed is None else world.cases[followed].kind,
        "namespace": world.steps[t].namespace,
        "phase": world.steps[t].phase,
    }


def server_settings(policy: str, home: Path) -> Any:
    """Default settings; cosine adds MEMENTO_RANKING=similarity, through the environment."""
    os.environ["MEMENTO_HOME"] = str(home)
    os.environ.pop("MEMENTO_RANKING", None)
    if policy == "cosine":
        os.environ["MEMENTO_RANKING"] = "similarity"
    from memento_mcp.settings import Settings

    return Settings()


async def serve_world(world: World, policy: str, u: list[float]) -> list[dict[str, Any]]:
    """One fresh bank and server: store the cases, then answer the query stream."""
    home = Path(tempfile.mkdtemp(prefix=f"memento-scn-{world.name}-{policy}-"))
    settings = server_settings(policy, home)
    from fastmcp import Client

    import memento_mcp.server as server_mod

    opened: list[Any] = []
    original = server_mod.open_memory

    def open_memory(s: Any) -> Any:  # keep hold of the Memory, to wait for its retrains
        memory = original(s)
        opened.append(memory)
        return memory

    server_mod.open_memory = open_memory
    try:
        async with Client(server_mod.build_server(settings)) as client:
            ids = await store_cases(client, world)
            out = [await one_step(client, world, t, u[t], ids) for t in range(len(world.steps))]
            settle(opened)
    finally:
        server_mod.open_memory = original
        shutil.rmtree(home, ignore_errors=True)
    return out


async def store_cases(client: Any, world: World) -> dict[int, int]:
    """Store every case as free-standing experience; case_id → index into world.cases."""
    ids = {}
    for i, case in enumerate(world.cases):
        args = {"task": case.task, "plan": case.plan, "answer": "-", "reward": 1.0}
        if case.namespace:
            args["namespace"] = case.namespace
        receipt = (await client.call_tool("record_outcome", args)).structured_content
        ids[receipt["case_id"]] = i
    return ids


async def one_step(
    client: Any, world: World, t: int, u: float, ids: dict[int, int]
) -> dict[str, Any]:
    step = world.steps[t]
    ns = {"namespace": step.namespace} if step.namespace else {}
    res = await client.call_tool("retrieve_cases", {"query": step.query, "k": world.k, **ns})
    res = res.structured_content
    hits = res["positive"] + res["negative"]
    hits = sorted(hits, key=lambda h: h["rank"])
    abstain = res["abstain"] or not hits
    shown = [ids[h["case_id"]] for h in hits]
    followed = None if abstain else shown[0]
    cos_top = hits[0]["similarity"] >= max(h["similarity"] for h in hits) if hits else None
    record = step_record(world, t, u, followed, shown, cos_top)
    args: dict[str, Any] = {"request_id": res["request_id"], "reward": record["reward"]}
    if world.report_used and hits:
        args["used_case_ids"] = [] if abstain else [hits[0]["case_id"]]
    await client.call_tool("record_outcome", args)
    return record


def settle(opened: list[Any]) -> None:
    """Let a background retrain finish before its bank closes."""
    for memory in opened:
        # Only a trainer already made (a cached_property): don't create one to wait on it.
        trainer = getattr(memory.learner, "__dict__", {}).get("trainer")
        if trainer is not None:
            trainer.wait_idle(timeout=900)


# -- numbers -----------------------------------------------------------------------------------


def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def metrics(run: dict[str, Any], world: World, window: int) -> dict[str, Any]:
    s = run["steps"]
    last = s[-window:]
    chance = [r["chance"] for r in s]
    expected, oracle = mean([r["chance"] for r in last]), mean([r["oracle"] for r in last])
    m: dict[str, Any] = {
        "reward": mean([r["reward"] for r in last]),
        "expected": expected,
        "oracle": oracle,
        "ratio": expected / oracle,
        "gain30": mean(chance[20:30]) - mean(chance[:10]),
        "early30": mean(chance[:30]),
        "on_topic": mean([r["on_topic"] for r in s if r["on_topic"] is not None]),
        "cos_top": mean([float(r["cos_top"]) for r in s if r["cos_top"] is not None]),
        "abstain": sum(r["abstain"] for r in s),
    }
    if world.drift_at is not None:
        after = s[world.drift_at : world.drift_at + 30]
        m["after30"] = mean([r["chance"] for r in after]) / mean([r["oracle"] for r in after])
    if world.name == "generalisation":
        m["good_kind"] = mean([float(r["kind"] == "good") for r in last])
    if world.name == "namespaces":
        for ns in ("a", "b"):
            mine = [r for r in last if r["namespace"] == ns]
            m[ns] = mean([r["chance"] for r in mine]) / mean([r["oracle"] for r in mine])
    return m


def last_window(scale: float) -> int:
    """The last 100 outcomes at --steps 1; scaled with it, never under 10."""
    return min(100, max(10, round(100 * scale)))


def summarise(runs: list[dict[str, Any]], scale: float) -> dict[str, dict[str, dict[str, Any]]]:
    """scenario → policy → metric → {median, min, per_seed}; vs_cos30 pairs seeds with cosine."""
    window = last_window(scale)
    by: dict[str, dict[str, dict[int, dict[str, Any]]]] = {}
    for run in runs:
        world = build(run["scenario"], run["seed"], scale)
        by.setdefault(run["scenario"], {}).setdefault(run["policy"], {})[run["seed"]] = metrics(
            run, world, window
        )
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for scenario, policies in by.items():
        cosine = policies.get("cosine", {})
        for policy, seeds in policies.items():
            for seed, m in seeds.items():
                if seed in cosine:
                    m["vs_cos30"] = m["early30"] - cosine[seed]["early30"]
            names = list(next(iter(seeds.values())))
            out.setdefault(scenario, {})[policy] = {
                name: {
                    "median": statistics.median(m[name] for m in seeds.values()),
                    "min": min(m[name] for m in seeds.values()),
                    "per_seed": {seed: m[name] for seed, m in sorted(seeds.items())},
                }
                for name in names
            }
    return out


NOTES = ("after30", "good_kind", "a", "b")


def table(summary: dict[str, dict[str, dict[str, Any]]], seeds: int, window: int) -> str:
    def cell(m: dict[str, Any], name: str, fmt: str = ".2f") -> str:
        if name not in m:
            return ""
        return f"{m[name]['median']:{fmt}} ({m[name]['min']:{fmt}})"

    head = [
        "scenario",
        "policy",
        "reward",
        "expected",
        "oracle",
        "ratio",
        "gain30",
        "vs_cos30",
        "on_topic",
        "cos_top",
        "notes",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for scenario, policies in summary.items():
        for policy in POLICIES:
            if policy not in policies:
                continue
            m = policies[policy]
            notes = [f"{n} {cell(m, n)}" for n in NOTES if n in m]
            if m["abstain"]["median"] or m["abstain"]["min"]:
                notes.append(f"abstain {cell(m, 'abstain', '.0f')}")
            server = policy in SERVER_POLICIES
            row = [
                scenario,
                policy,
                cell(m, "reward"),
                cell(m, "expected"),
                f"{m['oracle']['median']:.2f}",
                cell(m, "ratio"),
                cell(m, "gain30"),
                cell(m, "vs_cos30") if policy != "cosine" else "",
                cell(m, "on_topic") if server else "",
                cell(m, "cos_top") if server else "",
                "; ".join(notes),
            ]
            lines.append("| " + " | ".join(row) + " |")
    lines.append(
        f"\nMedian over {seeds} seeds (worst seed in brackets); last {window} outcomes unless noted."
    )
    return "\n".join(lines)


def plot(runs: list[dict[str, Any]], scale: float, path: Path, window: int = 25) -> None:
    """Expected reward (the hidden chance of the followed case), mean over seeds, moving average."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = list(dict.fromkeys(run["scenario"] for run in runs))
    cols = min(4, len(scenarios))
    rows = -(-len(scenarios) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax, scenario in zip(axes.flat, scenarios, strict=False):
        for policy in POLICIES:
            mine = [r["steps"] for r in runs if r["scenario"] == scenario and r["policy"] == policy]
            if not mine:
                continue
            n = min(len(s) for s in mine)
            per_step = [mean([s[t]["chance"] for s in mine]) for t in range(n)]
            avg = [mean(per_step[max(0, t - window + 1) : t + 1]) for t in range(n)]
            ax.plot(
                avg,
                label=policy,
                lw=2 if policy == "learned" else 1,
                zorder=3 if policy == "learned" else 2,
            )
        world = build(scenario, 0, scale)
        split = world.drift_at or next(
            (t for t, s in enumerate(world.steps) if s.phase == "test"), None
        )
        if split:
            ax.axvline(split, color="grey", lw=0.6, ls=":")
        ax.set(title=scenario, xlabel="outcomes", ylim=(0, 1))
    for ax in list(axes.flat)[len(scenarios) :]:
        ax.axis("off")
    axes.flat[0].set_ylabel(f"expected reward, moving avg of {window}")
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


# -- main --------------------------------------------------------------------------------------


def similarity_check() -> dict[str, float]:
    """similar_bad only makes sense if the near-duplicate is the most similar case to every query."""
    from similar_bad_tasks import TASKS

    from memento_mcp.retrieval.encoder import shared_encoder

    encoder = shared_encoder()
    near_sims, para_sims, margins = [], [], []
    for task, near, para, _, _ in TASKS:
        vectors = encoder.encode([*query_variants(task), near, para])
        queries = vectors[:-2]
        near_sim, para_sim = queries @ vectors[-2], queries @ vectors[-1]
        near_sims += near_sim.tolist()
        para_sims += para_sim.tolist()
        margins += (near_sim - para_sim).tolist()
    check = {
        "near_min": min(near_sims),
        "near_max": max(near_sims),
        "para_min": min(para_sims),
        "para_max": max(para_sims),
        "margin_min": min(margins),
    }
    print(
        f"similar_bad: cos(query, near-duplicate) {check['near_min']:.2f}-{check['near_max']:.2f},"
        f" cos(query, paraphrase) {check['para_min']:.2f}-{check['para_max']:.2f},"
        f" smallest margin {check['margin_min']:.3f} (must be > 0)"
    )
    if check["margin_min"] <= 0:
        raise SystemExit(
            "a paraphrase is more similar to a query than its near-duplicate: fix the tasks"
        )
    return check


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--scenarios", default="all", help=f"comma-separated from {', '.join(BUILDERS)}"
    )
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=float, default=1.0, help="scale the outcomes per scenario")
    parser.add_argument(
        "--workers", type=int, default=2, help="processes running seeds and policies"
    )
    parser.add_argument(
        "--policies", default=",".join(POLICIES), help="e.g. learned,oracle to iterate faster"
    )
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    policies = args.policies.split(",")
    if set(policies) - set(POLICIES):
        parser.error(f"--policies: choose from {', '.join(POLICIES)}")
    names = list(BUILDERS) if args.scenarios == "all" else args.scenarios.split(",")
    unknown = set(names) - set(BUILDERS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; choose from {', '.join(BUILDERS)}")

    check = similarity_check() if "similar_bad" in names else None
    jobs = [(n, p, s, args.steps) for n in names for s in range(args.seeds) for p in policies]
    t0 = time.perf_counter()
    runs = []
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(args.workers, initializer=init_worker) as pool:
        for run in pool.imap_unordered(run_job, jobs):
            runs.append(run)
            print(
                f"[{time.perf_counter() - t0:6.0f}s] {run['scenario']:>14} {run['policy']:>7}"
                f" seed {run['seed']}: {run['seconds']:.0f}s",
                flush=True,
            )
    runs.sort(key=lambda r: (names.index(r["scenario"]), POLICIES.index(r["policy"]), r["seed"]))
    summary = summarise(runs, args.steps)
    markdown = table(summary, args.seeds, last_window(args.steps))
    print(markdown)
    args.out.mkdir(parents=True, exist_ok=True)
    plot(runs, args.steps, args.out / "scenarios.png")
    (args.out / "scenarios.json").write_text(
        json.dumps(
            {
                "args": {**vars(args), "out": str(args.out)},
                "similarity_check": check,
                "seconds": time.perf_counter() - t0,
                "loadavg_at_end": os.getloadavg(),
                "summary": summary,
                "table": markdown,
                "runs": runs,
            }
        )
    )
    print(
        f"wrote {args.out / 'scenarios.json'} and {args.out / 'scenarios.png'}"
        f" in {time.perf_counter() - t0:.0f}s"
    )


if __name__ == "__main__":
    main()
