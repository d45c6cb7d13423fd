"""The worlds of bench/scenarios.py: stored cases, the query stream and the hidden chances.

A World is everything the simulated agent knows and the retriever does not: which family (topic)
each stored case and each query belongs to, and the hidden chance that following a case solves a
query. Every builder is a pure function of a `random.Random`, so a seed gives the same world,
the same queries and the same reward draws to every policy.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from similar_bad_tasks import TASKS

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

GOOD, BAD, OFF_TOPIC = 0.85, 0.25, 0.05
"""Hidden chances: the family's good plan, its other plans, a case from another family."""
NO_CASE = 0.2
"""Chance that the agent succeeds without any case (when the server abstains)."""
SIMILAR_BAD, PARAPHRASE_GOOD = 0.15, 0.9
NS_BAD = 0.2
"""In `namespaces`, the other namespace's good plan."""

METHODS = [
    "Search an encyclopedia for the {noun}, read its infobox, and answer.",
    "Answer directly from memory about the {noun} in one step.",
    "Query the public open-data API for the {noun} and report the field it returns.",
    "Search the news archive for the {noun} and take the most recent figure.",
    "Ask on a specialist forum about the {noun} and use the top-voted answer.",
    "Look the {noun} up in the official registry and copy the registered value.",
    "Find the {noun}'s own website and read its about page.",
    "Estimate from three similar {noun}s and round the result.",
]
"""Plans for the family worlds: neutral methods, none better in itself; the world decides which works."""

GOOD_KIND = [
    "Look up the {noun} in an authoritative reference, confirm it with a second independent source, then answer.",
    "Find two independent sources on the {noun}, compare what they say, and answer only if they agree.",
    "Check the {noun} in the official register and cross-check it against a reputable encyclopedia.",
    "Search for the {noun}, verify the figure in a second unrelated source, and cite both.",
    "Consult a primary source about the {noun}, then corroborate it with another trustworthy one before answering.",
    "Gather the facts about the {noun} from a reference work and double-check them in an independent database.",
    "Read the {noun}'s entry in a trusted almanac and validate it against a second publication.",
    "Take the answer about the {noun} from one source and confirm it with another before replying.",
    "Use a search engine to find the {noun}, open two different reliable pages, and reconcile them.",
    "Verify the {noun} in two separate authoritative sources and report the value they both give.",
]
BAD_OPENERS = [
    "Answer",
    "Reply",
    "Respond",
    "Give the answer",
    "State the fact",
    "Write down the value",
]
BAD_CORES = [
    "straight from memory about the {noun}.",
    "about the {noun} from what you already know, without looking anything up.",
    "about the {noun} from your best recollection, in one step.",
    "on the {noun} at once, relying on memory alone.",
    "about the {noun} from general knowledge, skipping any search.",
]
"""Generalisation plans: a cross-checking kind and an answer-from-memory kind, worded per family."""


@dataclass(frozen=True)
class Case:
    family: int
    task: str
    plan: str
    namespace: str | None = None
    kind: str = ""


@dataclass(frozen=True)
class Step:
    query: str
    family: int
    namespace: str | None = None
    phase: str = ""


@dataclass
class World:
    """Stored cases, queries, and `chance(case index, step index)` for on-topic cases."""

    name: str
    cases: list[Case]
    steps: list[Step]
    k: int
    report_used: bool
    chance: Callable[[int, int], float]
    no_case: float = NO_CASE
    off_topic: float = OFF_TOPIC
    drift_at: int | None = None

    def on_topic(self, i: int, t: int) -> bool:
        case, step = self.cases[i], self.steps[t]
        return case.family == step.family and case.namespace == step.namespace

    def p(self, i: int, t: int) -> float:
        """Hidden chance that following case i solves query t."""
        return self.chance(i, t) if self.on_topic(i, t) else self.off_topic

    def topical(self, t: int) -> list[int]:
        return [i for i in range(len(self.cases)) if self.on_topic(i, t)]

    def oracle(self, t: int) -> float:
        return max(self.p(i, t) for i in self.topical(t))


def query_variants(task: str) -> list[str]:
    """The task and two light variants of it (the queries of `similar_bad`)."""
    return [task, "Can you help? " + task, task.rstrip(".?!") + ", please."]


def similar_bad(rng: random.Random, steps: int) -> World:
    cases: list[Case] = []
    for f, (_, near, para, near_plan, para_plan) in enumerate(TASKS):
        cases += [Case(f, near, near_plan, kind="near"), Case(f, para, para_plan, kind="para")]
    order: list[int] = []
    while len(order) < steps:  # every task once per block, in a fresh order each block
        order += rng.sample(range(len(TASKS)), len(TASKS))
    stream = [Step(rng.choice(query_variants(TASKS[f][0])), f) for f in order[:steps]]
    quality = {"near": SIMILAR_BAD, "para": PARAPHRASE_GOOD}
    return World("similar_bad", cases, stream, 1, True, lambda i, t: quality[cases[i].kind])


def families(rng: random.Random, n: int, namespace: str | None = None) -> list[Case]:
    """Per family, 4 near-duplicate tasks, each with its own plan from METHODS."""
    cases = []
    for f, (topic, noun) in enumerate(TOPICS[:n]):
        for j, method in enumerate(rng.sample(METHODS, 4)):
            task = f"What is {topic} {entity(rng)}?"
            cases.append(Case(f, task, method.format(noun=noun), namespace, kind=str(j)))
    return cases


def family_steps(
    rng: random.Random, n: int, steps: int, namespaces: list[str | None]
) -> list[Step]:
    out = []
    for t in range(steps):
        f = rng.randrange(n)
        out.append(
            Step(f"What is {TOPICS[f][0]} {entity(rng)}?", f, namespaces[t % len(namespaces)])
        )
    return out


def drift(rng: random.Random, steps: int, n: int = 6) -> World:
    """The good case of each family turns bad halfway, and one of its bad cases turns good."""
    cases = families(rng, n)
    before = [rng.randrange(4) for _ in range(n)]
    after = [rng.choice([j for j in range(4) if j != b]) for b in before]
    half = steps // 2

    def chance(i: int, t: int) -> float:
        good = (before if t < half else after)[cases[i].family]
        return GOOD if cases[i].kind == str(good) else BAD

    stream = family_steps(rng, n, steps, [None])
    return World("drift", cases, stream, 4, True, chance, drift_at=half)


def stationary(name: str, rng: random.Random, steps: int, report_used: bool, n: int = 6) -> World:
    """Families as in drift, without the drift: `k4_used` and `k4_unused`."""
    cases = families(rng, n)
    good = [rng.randrange(4) for _ in range(n)]
    stream = family_steps(rng, n, steps, [None])

    def chance(i: int, t: int) -> float:
        return GOOD if cases[i].kind == str(good[cases[i].family]) else BAD

    return World(name, cases, stream, 4, report_used, chance)


def no_signal(rng: random.Random, steps: int, n: int = 6) -> World:
    """Every outcome is a fair coin, whatever is followed (even nothing)."""
    cases = families(rng, n)
    stream = family_steps(rng, n, steps, [None])
    return World("no_signal", cases, stream, 4, True, lambda i, t: 0.5, no_case=0.5, off_topic=0.5)


def namespaces(rng: random.Random, steps: int, n: int = 6) -> World:
    """The same cases in namespaces a and b: plan X works in a and fails in b, Y the reverse."""
    shared = families(rng, n)
    cases = [Case(c.family, c.task, c.plan, ns, c.kind) for ns in ("a", "b") for c in shared]
    x = [rng.randrange(4) for _ in range(n)]
    y = [rng.choice([j for j in range(4) if j != g]) for g in x]

    def chance(i: int, t: int) -> float:
        case = cases[i]
        mine, theirs = (x, y) if case.namespace == "a" else (y, x)
        if case.kind == str(mine[case.family]):
            return GOOD
        return NS_BAD if case.kind == str(theirs[case.family]) else BAD

    stream = family_steps(rng, n, steps, ["a", "b"])
    return World("namespaces", cases, stream, 4, True, chance)


def generalisation(rng: random.Random, steps: int, n: int = 10, taught: int = 6) -> World:
    """Families 1-6 teach which kind of plan works; families 7-10 are then queried, untried."""
    bad_wordings = [(o, c) for o in BAD_OPENERS for c in BAD_CORES]
    rng.shuffle(bad_wordings)
    cases = []
    for f, (topic, noun) in enumerate(TOPICS[:n]):
        plans = [(GOOD_KIND[f].format(noun=noun), "good")]
        plans += [(f"{o} {c.format(noun=noun)}", "bad") for o, c in bad_wordings[3 * f : 3 * f + 3]]
        rng.shuffle(plans)
        cases += [
            Case(f, f"What is {topic} {entity(rng)}?", plan, kind=kind) for plan, kind in plans
        ]
    train = steps * 3 // 4
    stream = []
    for t in range(steps):
        f = rng.randrange(taught) if t < train else rng.randrange(taught, n)
        phase = "train" if t < train else "test"
        stream.append(Step(f"What is {TOPICS[f][0]} {entity(rng)}?", f, None, phase))
    chance = {"good": GOOD, "bad": BAD}
    return World("generalisation", cases, stream, 4, True, lambda i, t: chance[cases[i].kind])


BUILDERS: dict[str, tuple[int, Callable[[random.Random, int], World]]] = {
    "similar_bad": (360, similar_bad),
    "drift": (400, drift),
    "namespaces": (400, namespaces),
    "generalisation": (400, generalisation),
    "no_signal": (400, no_signal),
    "k4_used": (400, lambda rng, steps: stationary("k4_used", rng, steps, True)),
    "k4_unused": (400, lambda rng, steps: stationary("k4_unused", rng, steps, False)),
}
"""Scenario name → (outcomes at --steps 1, builder)."""


def build(name: str, seed: int, scale: float) -> World:
    steps, builder = BUILDERS[name]
    return builder(random.Random(f"{name}-{seed}"), max(40, round(steps * scale)))
