"""Online learning as an agent sees it: outcomes change the next retrieval at once.

The tests that touch a bank run on both (any_settings: SQLite, then PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest

from memento_mcp import memory as memory_module
from memento_mcp.casebank import NewCase
from memento_mcp.memory import Memory, open_memory
from memento_mcp.settings import Settings
from retriever.contract import History
from retriever.policy import SHARPNESS, contextual_evidence, posterior, relevance, select

TASK = "Plan a three day trip to Lisbon on a small budget"
NEAR = "Plan a three day trip to Lisbon on a tight budget"  # the most similar stored case
PARAPHRASE = "How can I spend three cheap days visiting Lisbon?"
OTHER = "Write a Python function that reverses a linked list"


def bank_with(settings: Settings, **changes: object) -> Memory:
    memory = open_memory(settings.model_copy(update=changes))
    memory.learner = None  # the trained prior has tests of its own (tests/retriever)
    return memory


@pytest.fixture
def greedy(any_settings: Settings) -> Iterator[Memory]:
    """A Memory without exploration, on each bank in turn (SQLite, then PostgreSQL)."""
    memory = bank_with(any_settings, explore=False)
    yield memory
    memory.close()


def store(memory: Memory, task: str, plan: str, namespace: str | None = None) -> int:
    receipt = memory.record_outcome(
        task=task, plan=plan, answer="-", reward=1.0, namespace=namespace
    )
    assert receipt.case_id is not None
    return receipt.case_id


def test_with_no_outcomes_the_order_is_the_similarity_order(greedy: Memory) -> None:
    for task in (OTHER, PARAPHRASE, NEAR):
        store(greedy, task, "some plan")
    result = greedy.retrieve(TASK, k=3)
    similarities = [hit.similarity for hit in result.cases]
    assert similarities == sorted(similarities, reverse=True)
    assert result.cases[0].task == NEAR
    assert result.scorer == "evidence"


def test_a_case_that_fails_drops_on_the_next_request(greedy: Memory) -> None:
    near = store(greedy, NEAR, "Answer from memory.")
    paraphrase = store(greedy, PARAPHRASE, "Check two travel sites, then answer.")
    first = greedy.retrieve(TASK, k=1)
    assert [hit.case_id for hit in first.cases] == [near]
    greedy.record_outcome(request_id=first.request_id, reward=0.0, used_case_ids=[near])
    second = greedy.retrieve(TASK, k=1)
    assert [hit.case_id for hit in second.cases] == [paraphrase]


def test_a_case_nobody_followed_does_not_rise_on_the_successes_of_the_case_above_it(
    greedy: Memory,
) -> None:
    """Without used_case_ids the second of two cases gets 1/17 of each outcome. Those slivers
    once entered its evidence: 16 successes of the case above it pushed its own failure out of
    its 16-row window and its score rose from 0.35 to 0.63, above the 0.5 it started at, so it
    was followed again and failed again (bench/scenarios.py k4_unused). Its failure must keep it
    below where it started."""
    near = store(greedy, NEAR, "Answer from memory.")
    paraphrase = store(greedy, PARAPHRASE, "Check two travel sites, then answer.")
    first = greedy.retrieve(TASK, k=2)
    assert first.cases[0].case_id == near
    greedy.record_outcome(request_id=first.request_id, reward=0.0)
    scores = []
    for _ in range(20):
        result = greedy.retrieve(TASK, k=2)
        assert [hit.case_id for hit in result.cases] == [paraphrase, near]
        scores.append(result.cases[1].score)
        greedy.record_outcome(request_id=result.request_id, reward=1.0)
    assert max(scores) < first.cases[0].score


def test_successes_keep_a_case_on_top_and_raise_its_score(greedy: Memory) -> None:
    near = store(greedy, NEAR, "Check two travel sites, then answer.")
    store(greedy, PARAPHRASE, "Answer from memory.")
    scores = []
    for _ in range(6):
        result = greedy.retrieve(TASK, k=2)
        assert result.cases[0].case_id == near
        scores.append(result.cases[0].score)
        greedy.record_outcome(request_id=result.request_id, reward=1.0, used_case_ids=[near])
    assert scores == sorted(scores) and scores[-1] > scores[0]


def test_exploring_learns_where_similarity_misleads(any_settings: Settings) -> None:
    memory = bank_with(any_settings)  # the defaults: exploring
    near = store(memory, NEAR, "Answer from memory.")
    paraphrase = store(memory, PARAPHRASE, "Check two travel sites, then answer.")
    rng = np.random.default_rng(0)
    followed = []
    for _ in range(40):
        result = memory.retrieve(TASK, k=1)
        case_id = result.cases[0].case_id
        chance = 0.9 if case_id == paraphrase else 0.15
        reward = float(rng.random() < chance)
        memory.record_outcome(request_id=result.request_id, reward=reward, used_case_ids=[case_id])
        followed.append(case_id)
    assert followed[0] == near
    assert followed[-15:].count(paraphrase) >= 12
    memory.close()


def test_shown_propensities_and_inclusion_probabilities_are_consistent() -> None:
    rng = np.random.default_rng(1)
    n, k = 12, 4
    similarity = np.linspace(0.9, 0.5, n)
    successes = rng.uniform(0, 3, n)
    trials = successes + rng.uniform(0, 3, n)
    selection = select(similarity, np.full(n, 0.5), successes, trials, k, True, rng)
    assert selection.inclusion.sum() == pytest.approx(k)
    assert len(selection.order) == k == len(set(selection.order))
    for index, propensity in zip(selection.order, selection.propensities, strict=True):
        assert 0 < propensity <= 1
        assert propensity == pytest.approx(selection.inclusion[index], abs=0.05)
    greedy = select(similarity, np.full(n, 0.5), successes, trials, k, False, rng)
    assert greedy.propensities == [1.0] * k and greedy.inclusion.sum() == k


def test_inclusion_probabilities_match_drawing_every_candidate() -> None:
    """select draws only the cases with evidence and the k best of the rest; what it shows must
    be what drawing every candidate would show, with the same probabilities."""
    rng = np.random.default_rng(3)
    n, k = 30, 4
    similarity = np.sort(rng.uniform(0.3, 0.6, n))[::-1].copy()
    similarity[:6] = [0.8, 0.78, 0.76, 0.74, 0.72, 0.7]
    prior = rng.uniform(0.2, 0.8, n)
    trials = np.where(rng.random(n) < 0.5, rng.uniform(0.5, 4, n), 0.0)
    successes = trials * rng.uniform(0, 1, n)
    inclusion = np.mean(
        [select(similarity, prior, successes, trials, k, True, rng).inclusion for _ in range(40)],
        axis=0,
    )
    alpha, beta = posterior(prior, successes, trials)
    theta = np.tile(alpha / (alpha + beta), (20_000, 1))
    tried = trials > 0
    theta[:, tried] = rng.beta(
        SHARPNESS * alpha[tried], SHARPNESS * beta[tried], (20_000, tried.sum())
    )
    top = np.argpartition(-(relevance(similarity) * theta + 1e-9 * similarity), k - 1, axis=1)
    brute = np.bincount(top[:, :k].ravel(), minlength=n) / 20_000
    assert inclusion.sum() == pytest.approx(k)
    assert np.abs(inclusion - brute).max() < 0.03


def test_more_successes_never_lower_a_score() -> None:
    """Monotone in the evidence, over random features: the property a user relies on when a
    case keeps working."""
    rng = np.random.default_rng(2)
    for _ in range(200):
        n = 6
        similarity = rng.uniform(0.2, 1.0, n)
        prior = rng.uniform(0.01, 0.99, n)
        trials = rng.uniform(0, 12, n)
        successes = trials * rng.uniform(0, 1, n)
        base = select(similarity, prior, successes, trials, n, False, rng).scores
        won = select(similarity, prior, successes + 1, trials + 1, n, False, rng).scores
        lost = select(similarity, prior, successes, trials + 1, n, False, rng).scores
        assert np.all(won >= base - 1e-12)
        assert np.all(lost <= base + 1e-12)


def test_namespaces_learn_apart(greedy: Memory) -> None:
    ids = {
        ns: (store(greedy, NEAR, "plan x", ns), store(greedy, PARAPHRASE, "plan y", ns))
        for ns in "ab"
    }
    for _ in range(3):
        result = greedy.retrieve(TASK, k=1, namespace="a")
        greedy.record_outcome(request_id=result.request_id, reward=0.0)
    assert greedy.retrieve(TASK, k=1, namespace="a").cases[0].case_id == ids["a"][1]
    untouched = greedy.retrieve(TASK, k=2, namespace="b")
    assert [hit.case_id for hit in untouched.cases] == list(ids["b"])
    assert untouched.cases[0].score == pytest.approx(untouched.cases[1].score, abs=0.05)


def test_abstains_when_nothing_stored_is_relevant_and_can_be_told_not_to(
    any_settings: Settings,
) -> None:
    memory = bank_with(any_settings)
    store(memory, OTHER, "Walk the list and flip each pointer.")
    result = memory.retrieve("What is the boiling point of ethanol at sea level?", k=4)
    assert result.abstain and result.cases == []
    assert "threshold" in (result.abstain_reason or "")
    assert memory.retrieve(OTHER, k=1).abstain is False  # a relevant case is still returned
    memory.close()
    padded = bank_with(any_settings, abstain_below=0.0)
    result = padded.retrieve("What is the boiling point of ethanol at sea level?", k=4)
    assert not result.abstain and len(result.cases) == 1
    padded.close()


def test_similarity_ranking_ignores_outcomes(any_settings: Settings) -> None:
    memory = bank_with(any_settings, ranking="similarity")
    near = store(memory, NEAR, "Answer from memory.")
    store(memory, PARAPHRASE, "Check two travel sites, then answer.")
    for _ in range(3):
        result = memory.retrieve(TASK, k=1)
        assert result.scorer == "cosine" and result.cases[0].case_id == near
        memory.record_outcome(request_id=result.request_id, reward=0.0)
    memory.close()


def leader_and_rival(leader: list[float], closeness: float = 1.0) -> tuple[float, float, float]:
    """Posterior means of a leader with these outcomes (newest first, all after the rival's) and
    of a rival whose three outcomes, long ago, all failed; every earlier query at cosine
    `closeness` to this one. Third: the chance that nothing changed, by which the learnt priors
    are kept (Memory._rank)."""
    query = np.zeros(8, np.float32)
    query[0] = 1.0
    earlier = np.zeros(8, np.float32)
    earlier[:2] = closeness, np.sqrt(1.0 - closeness**2)
    rival = [0.0, 0.0, 0.0]
    rewards = np.array(leader + rival)
    history = History(
        owner=np.array([0] * len(leader) + [1] * len(rival)),
        queries=np.tile(earlier, (len(rewards), 1)),
        rewards=rewards,
        credits=np.ones(len(rewards)),
        ids=np.array([*range(200, 200 - len(leader), -1), 30, 20, 10]),
    )
    successes, trials, unchanged = contextual_evidence(query, history, 2)
    alpha, beta = posterior(np.full(2, 0.5), successes, trials)
    mean = alpha / (alpha + beta)
    return float(mean[0]), float(mean[1]), unchanged


def test_when_the_leader_fails_beyond_its_record_the_cases_that_failed_before_come_back() -> None:
    """Issue 9, change over time: after 13 successes a case fails three times in a row. What
    works has likely changed, so a rival's failures from before the change stop holding it back
    (it was not followed since, so nothing newer of its own could outweigh them): it now ranks
    above the leader. With per-case recency alone the rival stayed at 0.22, below a leader at 0.55.
    The priors learnt from the same past (the trained model's, the plan prior's) fade too."""
    leader, rival, unchanged = leader_and_rival([0.0, 0.0, 0.0] + [1.0] * 13)
    assert rival > leader
    assert leader < 0.45
    assert unchanged < 0.1


def test_a_change_is_seen_as_soon_when_the_earlier_queries_were_only_related() -> None:
    """Outcomes of related queries (cosine 0.58: each counts 0.65 toward the evidence) tell of a
    change as clearly as outcomes of this very query: the leader's three failures are three
    observations of it, whoever asked. Counted at 0.65 each, the leader kept its rank (0.56 vs
    0.43) and, in bench/scenarios.py drift, went on being shown for 6-8 failures. The learnt
    priors fade as far as those queries are related: they keep 0.38 of their pull, against 0.03
    after the same failures on this very query."""
    leader, rival, unchanged = leader_and_rival([0.0, 0.0, 0.0] + [1.0] * 13, closeness=0.58)
    assert rival > leader
    assert 0.3 < unchanged < 0.45


def test_a_change_on_another_topic_leaves_this_topics_learnt_priors_their_pull() -> None:
    """The same change, seen only on queries about something else (cosine 0.3), says nothing
    about what works for this one: the priors learnt from other tasks (the plan prior's "plans
    of this kind work") keep their whole pull for its cases. They lost nearly all of it (0.03)
    when any change among the candidates' outcomes counted, and a topic never tried before
    started with its good kind of plan barely ahead (bench/scenarios.py generalisation)."""
    _, _, unchanged = leader_and_rival([0.0, 0.0, 0.0] + [1.0] * 13, closeness=0.3)
    assert unchanged > 0.95


def test_a_leader_that_fails_within_its_record_keeps_its_rank_and_rivals_their_record() -> None:
    """One failure in 16 is what a 0.85 case does: nothing changed, so nothing is explored again
    for it (bench/scenarios.py k4_used). The learnt priors keep part of their pull (0.29 with
    contract.CHANGE_HAZARD 0.1, 0.47 with 0.05), far more than after a change (< 0.1, above)."""
    leader, rival, unchanged = leader_and_rival([0.0] + [1.0] * 15)
    assert leader > 0.8
    assert rival < 0.35
    assert unchanged > 0.25


TOPICS = ["the population of the city", "the author of the novel", "the height of the mountain",
          "the founding year of the company"]  # fmt: skip
CROSS_CHECK = "Look up {0} in a reference work, confirm it in a second independent source, answer."
FROM_MEMORY = "Answer about {0} straight from memory, without looking anything up."


def test_what_other_tasks_taught_about_kinds_of_plan_ranks_cases_never_tried(
    any_settings: Settings,
) -> None:
    """Three topics teach that cross-checking plans work and answering from memory fails; on a
    fourth topic, never tried, the cross-checking case comes first though the other is closer."""
    memory = open_memory(any_settings.model_copy(update={"explore": False, "retrain_every": 10**6}))
    for topic in TOPICS[:3]:
        store(memory, f"What is {topic} Arlen?", FROM_MEMORY.format(topic))
        store(memory, f"What is {topic} Torva?", CROSS_CHECK.format(topic))
    for _ in range(4):
        for topic in TOPICS[:3]:
            result = memory.retrieve(f"What is {topic} Melquin?", k=1)
            followed = result.cases[0]
            reward = 1.0 if followed.plan.startswith("Look up") else 0.0
            memory.record_outcome(
                request_id=result.request_id, reward=reward, used_case_ids=[followed.case_id]
            )
    new = TOPICS[3]
    closer = store(memory, f"What is {new} Dorsa?", FROM_MEMORY.format(new))
    cross_check = store(memory, f"What is {new} Pelith Ronvale?", CROSS_CHECK.format(new))
    result = memory.retrieve(f"What is {new} Dorsa?", k=2)
    assert [hit.case_id for hit in result.cases] == [cross_check, closer]
    assert result.cases[0].similarity < result.cases[1].similarity
    assert memory.bank.plan_vectors([closer, cross_check])[1] == []  # embedded as stored
    memory.close()


TRIP_PLAN = "Book a hostel, walk the old town, take the 28 tram."


def test_a_plan_without_a_vector_is_embedded_off_the_request_path(
    any_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A case imported with its task's vector only is ranked at once, its task's vector standing
    in for its plan's; the plan is embedded by a background thread, not by the retrieval."""
    memory = open_memory(any_settings)
    case = NewCase("default", TASK, TRIP_PLAN, "-", 1.0)
    case_id, _ = memory.bank.add_case(case, memory.encoder.encode_one(TASK))
    assert memory.bank.plan_vectors([case_id])[1] == [case_id]
    plan_encoded_by = []
    encode_one = memory.encoder.encode_one

    def recording_encode_one(text: str) -> np.ndarray:
        if text == TRIP_PLAN:
            plan_encoded_by.append(threading.current_thread().name)
        return encode_one(text)

    monkeypatch.setattr(memory.encoder, "encode_one", recording_encode_one)
    assert [hit.case_id for hit in memory.retrieve(TASK, k=1).cases] == [case_id]
    memory_module._PLANS.submit(lambda: None).result()  # one worker: what was queued is done
    assert memory.bank.plan_vectors([case_id])[1] == []
    assert len(plan_encoded_by) == 1 and plan_encoded_by[0].startswith("memento-plans")
    memory.close()


def test_a_server_that_closes_drops_its_queued_plans_quietly(
    any_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Plans still queued when a server shuts down logged one 'embedding failed' warning per
    batch, each a false alarm: their tasks stand in, and the next server queues them again."""
    memory = open_memory(any_settings)
    memory.bank.add_case(NewCase("default", TASK, TRIP_PLAN, "-", 1.0),
                         memory.encoder.encode_one(TASK))  # fmt: skip
    gate = threading.Event()
    memory_module._PLANS.submit(gate.wait)  # hold the worker: the plan below stays queued
    try:
        memory.retrieve(TASK, k=1)
        assert memory._plans_queued
        memory.close()
    finally:
        gate.set()
    memory_module._PLANS.submit(lambda: None).result()
    assert not memory._plans_queued  # the queued batch ran, and returned at once
    assert not [r for r in caplog.records if "plans failed" in r.getMessage()]


def test_a_recorded_case_is_stored_with_its_plan_embedded(greedy: Memory) -> None:
    case_id = store(greedy, TASK, TRIP_PLAN)
    plans, unembedded = greedy.bank.plan_vectors([case_id])
    assert unembedded == []
    np.testing.assert_allclose(plans[0], greedy.encoder.encode_one(TRIP_PLAN), atol=1e-5)


def test_outcomes_another_server_records_change_this_ones_next_ranking(
    any_settings: Settings,
) -> None:
    """Two servers on one bank: what one learns about a case reaches the other's next request,
    although each keeps the histories it has read (retriever.histories)."""
    settings = any_settings.model_copy(update={"explore": False, "retrain_every": 10**6})
    here, there = open_memory(settings), open_memory(settings)
    near = store(here, NEAR, "Follow the guide.")  # one plan: the plan prior moves both alike
    paraphrase = store(here, PARAPHRASE, "Follow the guide.")
    for _ in range(3):  # here learns that the nearest case works, and keeps its history
        result = here.retrieve(TASK, k=1)
        assert [hit.case_id for hit in result.cases] == [near]
        here.record_outcome(request_id=result.request_id, reward=1.0, used_case_ids=[near])
    for _ in range(8):  # there, it keeps failing
        result = there.retrieve(TASK, k=2)
        there.record_outcome(request_id=result.request_id, reward=0.0, used_case_ids=[near])
    assert [hit.case_id for hit in here.retrieve(TASK, k=1).cases] == [paraphrase]
    here.close()
    there.close()


def test_a_revocation_reaches_a_running_servers_next_ranking(any_settings: Settings) -> None:
    """A poisoner's failures pushed the nearest case down on a running server; once another
    process revokes them, that server's next request ranks as if they had never come, although
    it had folded them into its plan prior and kept the case's history."""
    settings = any_settings.model_copy(update={"explore": False, "retrain_every": 10**6})
    here = open_memory(settings)
    near = store(here, NEAR, "Answer from memory.")
    paraphrase = store(here, PARAPHRASE, "Check two travel sites, then answer.")
    for _ in range(4):
        result = here.retrieve(TASK, k=2)
        here.record_outcome(
            request_id=result.request_id, reward=0.0, used_case_ids=[near], client_id="mallory"
        )
    assert [hit.case_id for hit in here.retrieve(TASK, k=1).cases] == [paraphrase]
    there = open_memory(settings)  # the CLI's `outcomes revoke`, in another process
    assert there.bank.revoke_client("mallory", "1970-01-01T00:00:00")["outcomes"] == 4
    assert [hit.case_id for hit in here.retrieve(TASK, k=1).cases] == [near]
    here.close()
    there.close()
