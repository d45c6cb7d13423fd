"""Online learning where similarity misleads: random vs cosine vs the learning retriever.

    python bench/learning_curve.py [--steps 500] [--families 6] [--retrain-every 10] [--temperature 0.05]

The simulation (read this before quoting the numbers):

- A fresh case bank holds `families` task families (population of a city, author of a novel,
  ...). Each family has 4 stored cases whose tasks are near-duplicates ("What is the population
  of the city Arlenbri?", the same question about another made-up name) and which were all
  stored with reward 1.0, so neither the text nor the stored reward tells them apart. Their plans
  differ: one cross-checks with a second source, three answer from memory. For a new task of the
  family, the hidden chance that following a case succeeds is 0.85 for the cross-checking case,
  0.25 for the others, 0.05 for another family's case. Which near-duplicate is most similar to a
  new task depends only on the made-up names, so similarity picks the good plan about a quarter
  of the time. Only outcomes can reveal it; the head learns it from each case's record
  (CASE_STATS) and must also learn that other families' cases, never tried, are no better.
- Each step draws a family and a fresh entity, calls the real MCP tool `retrieve_cases` (k=4) on
  an in-memory `fastmcp.Client`, follows one returned case, draws the reward from that case's
  hidden chance, and calls `record_outcome(request_id, reward, used_case_ids=[case])`. No new case
  is stored, so the candidates stay fixed and the three policies face the same problem.
- random follows a uniformly chosen returned case; the others follow the top-ranked one.
  cosine is the server with no trained retriever, ranking greedily. learned is the same server
  with the OnlineTrainer attached, which retrains its head in the background every
  `retrain-every` labels and promotes it only when it is no worse than what serves, and with
  Memento's softmax policy mu ∝ exp(Q/T) at `--temperature` (0.05): a greedy policy never shows
  the differently phrased case, so no log could ever reveal it. cosine+explore is cosine under
  the same softmax, to show that exploring alone does not close the gap.
- The oracle always follows the best case of the family (0.85): regret = 0.85 - the hidden chance
  of the followed case, summed. Cumulative reward is the sum of the drawn rewards.

Writes bench/out/learning_curve.png and bench/out/learning_curve.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

GOOD, BAD, OFF = 0.85, 0.25, 0.05
OUT = Path(__file__).parent / "out"
GOOD_PLAN = (
    "1. Search an authoritative reference. 2. Confirm with a second independent source. 3. Answer."
)
BAD_PLAN = "Answer directly from memory in one step."

TOPICS = [
    ("the population of the city", "city"),
    ("the author of the novel", "novel"),
    ("the height of the mountain", "mountain"),
    ("the founding year of the company", "company"),
    ("the capital of the province", "province"),
    ("the currency used in the republic of", "republic"),
    ("the release year of the film", "film"),
    ("the boiling point of the compound", "compound"),
    ("the head coach of the football club", "club"),
    ("the area of the lake", "lake"),
    ("the architect of the cathedral", "cathedral"),
    ("the discoverer of the asteroid", "asteroid"),
    ("the chief executive of the bank", "bank"),
    ("the length of the river", "river"),
    ("the composer of the opera", "opera"),
    ("the orbital period of the moon", "moon"),
    ("the official language of the island", "island"),
    ("the opening year of the bridge", "bridge"),
    ("the record label of the band", "band"),
    ("the top speed of the locomotive", "locomotive"),
]
SYLLABLES = [
    "ar",
    "len",
    "bri",
    "sk",
    "tor",
    "va",
    "mel",
    "quin",
    "dor",
    "sa",
    "pel",
    "ith",
    "ron",
    "cal",
    "ve",
    "mo",
]


def entity(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(3)).capitalize()


def build_world(n_families: int, rng: random.Random) -> list[dict[str, Any]]:
    """Per family, 4 near-duplicate stored tasks; one's plan cross-checks, three answer from memory."""
    world = []
    for topic, _ in TOPICS[:n_families]:
        cases = [
            {"task": f"What is {topic} {entity(rng)}?", "plan": BAD_PLAN, "quality": BAD}
            for _ in range(4)
        ]
        good = rng.randrange(4)
        cases[good] |= {"plan": GOOD_PLAN, "quality": GOOD}
        world.append({"topic": topic, "cases": cases})
    return world


async def run_policy(
    policy: str,
    world: list[dict[str, Any]],
    steps: int,
    retrain_every: int,
    seed: int,
    temperature: float,
) -> dict[str, Any]:
    """One fresh bank and server; returns per-step rewards and regrets."""
    home = Path(tempfile.mkdtemp(prefix=f"memento-lc-{policy}-"))
    os.environ["MEMENTO_HOME"] = str(home)
    from fastmcp import Client

    import memento_mcp.server as server_mod
    from memento_mcp.settings import Settings
    from retriever.online import OnlineTrainer

    explore = policy in ("learned", "cosine+explore")
    settings = Settings(
        home=home, retrain_every=retrain_every, temperature=temperature if explore else 0.0
    )
    trainers: list[OnlineTrainer] = []
    original_open = server_mod.open_memory

    def open_memory(s: Settings) -> Any:  # the baselines serve without a learner
        memory = original_open(s)
        if policy != "learned":
            memory.scorers = None
        elif memory.scorers is None:
            memory.scorers = OnlineTrainer(memory.bank, s.checkpoint_dir, s.retrain_every)
        if memory.scorers is not None:  # the server's lazy wrapper holds the OnlineTrainer
            trainers.append(getattr(memory.scorers, "trainer", memory.scorers))
        return memory

    server_mod.open_memory = open_memory
    rng = random.Random(seed)
    quality: dict[str, float] = {}
    rewards, regrets, scorer_names = [], [], []
    try:
        mcp = server_mod.build_server(settings)
        async with Client(mcp) as client:
            for family in world:
                for case in family["cases"]:
                    await client.call_tool(
                        "record_outcome",
                        {"task": case["task"], "plan": case["plan"], "answer": "-", "reward": 1.0},
                    )
                    quality[case["task"]] = case["quality"]
            t0 = time.perf_counter()
            for step in range(steps):
                fam = rng.randrange(len(world))
                query = f"What is {world[fam]['topic']} {entity(rng)}?"
                res = (
                    await client.call_tool("retrieve_cases", {"query": query, "k": 4})
                ).structured_content
                hits = sorted(res["positive"] + res["negative"], key=lambda h: h["rank"])
                chosen = rng.choice(hits) if policy == "random" else hits[0]
                own = {c["task"] for c in world[fam]["cases"]}
                p = quality[chosen["task"]] if chosen["task"] in own else OFF
                reward = float(rng.random() < p)
                await client.call_tool(
                    "record_outcome",
                    {
                        "request_id": res["request_id"],
                        "reward": reward,
                        "used_case_ids": [chosen["case_id"]],
                    },
                )
                rewards.append(reward)
                regrets.append(GOOD - p)
                scorer_names.append(res["scorer"])
            seconds = time.perf_counter() - t0
            if trainers:
                trainers[-1].wait_idle(timeout=120)
            status = trainers[-1].status() if trainers else None
    finally:
        server_mod.open_memory = original_open
    return {
        "policy": policy,
        "rewards": rewards,
        "regrets": regrets,
        "first_learned_step": next((i for i, s in enumerate(scorer_names) if s != "cosine"), None),
        "seconds": seconds,
        "final_scorer": scorer_names[-1],
        "status": {k: status[k] for k in ("active_version", "labelled", "fallback", "last_run")}
        if status
        else None,
    }


def cumulative(xs: list[float]) -> list[float]:
    out, total = [], 0.0
    for x in xs:
        total += x
        out.append(total)
    return out


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for r in results:
        ax1.plot(cumulative(r["regrets"]), label=r["policy"])
        window = 25
        avg = [
            sum(r["rewards"][max(0, i - window + 1) : i + 1]) / min(i + 1, window)
            for i in range(len(r["rewards"]))
        ]
        ax2.plot(avg, label=r["policy"])
        if r["first_learned_step"] is not None:
            ax1.axvline(r["first_learned_step"], color="grey", lw=0.6, ls=":")
    ax1.set(
        title="Cumulative regret vs oracle (lower is better)",
        xlabel="outcomes recorded",
        ylabel="regret",
    )
    ax2.axhline(GOOD, color="black", lw=0.6, ls="--", label="oracle")
    ax2.set(title="Reward, moving average of 25", xlabel="outcomes recorded", ylabel="reward")
    ax1.legend()
    ax2.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--families", type=int, default=6)
    parser.add_argument("--retrain-every", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--temperature", type=float, default=0.05, help="softmax exploration of learned"
    )
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)  # two spinning threads made each query encode 20x slower on this box

    world = build_world(args.families, random.Random(args.seed))
    policies = ("random", "cosine", "cosine+explore", "learned")
    results = [
        await run_policy(p, world, args.steps, args.retrain_every, args.seed, args.temperature)
        for p in policies
    ]
    marks = [m for m in (50, 100, 200, 300, 500, 1000) if m <= args.steps]
    print(f"{args.steps} outcomes, {args.families} families x 4 cases, oracle chance {GOOD}")
    print(
        f"{'policy':>14} "
        + " ".join(f"{'reward@' + str(m):>11} {'regret@' + str(m):>11}" for m in marks)
        + "   s/step"
    )
    for r in results:
        cr, cg = cumulative(r["rewards"]), cumulative(r["regrets"])
        cells = " ".join(f"{cr[m - 1]:>11.0f} {cg[m - 1]:>11.1f}" for m in marks)
        good_last = sum(g == 0.0 for g in r["regrets"][-100:]) / min(100, len(r["regrets"]))
        print(
            f"{r['policy']:>14} {cells}   {r['seconds'] / args.steps:.3f}   good plan in last 100: {good_last:.0%}"
        )
    learned = results[-1]
    print(
        f"learned: first served by a trained head after outcome {learned['first_learned_step']}; final scorer {learned['final_scorer']}"
    )
    png = OUT / "learning_curve.png"
    plot(results, png)
    (OUT / "learning_curve.json").write_text(
        json.dumps({"args": vars(args), "results": results}, indent=1)
    )
    print(f"wrote {png}")


if __name__ == "__main__":
    asyncio.run(main())
