"""TenantMemory in process: what one principal may see, change and label, on both banks."""

from __future__ import annotations

import pytest

from memento_mcp.auth.principal import LOCAL, Principal
from memento_mcp.auth.ratelimit import RateLimiter
from memento_mcp.auth.tenant import TenantMemory
from memento_mcp.errors import Forbidden, NotFound, RateLimited
from memento_mcp.memory import Memory

pytestmark = pytest.mark.slow  # loads the encoder


@pytest.fixture
def memory(any_memory: Memory) -> Memory:
    """Each test runs on the SQLite file, then on PostgreSQL (conftest's bank_location)."""
    return any_memory


def as_(memory: Memory, name: str, *namespaces: str) -> TenantMemory:
    return TenantMemory(memory, Principal.of(name, list(namespaces)), RateLimiter())


def test_a_tenant_cannot_label_another_clients_request_even_in_a_shared_namespace(
    memory: Memory,
) -> None:
    alice, mallory = as_(memory, "alice", "team"), as_(memory, "mallory", "team")
    alice.record_outcome(task="Who wrote Dune?", plan="Search it", answer="Herbert", reward=1.0)
    shown = alice.retrieve("Who wrote Dune?")
    with pytest.raises(NotFound) as theirs:
        mallory.record_outcome(request_id=shown.request_id, reward=0.0)
    with pytest.raises(NotFound) as nobodys:
        mallory.record_outcome(request_id="0" * 32, reward=0.0)
    assert str(theirs.value).replace(shown.request_id, "R") == str(nobodys.value).replace("0" * 32, "R")
    assert memory.bank.labelled_count("team") == 0
    assert alice.record_outcome(request_id=shown.request_id, reward=1.0).labelled_impressions == 1
    # The bank's local owner (stdio, the CLI) may still report on anyone's request.
    local = TenantMemory(memory, LOCAL, RateLimiter())
    again = local.retrieve("Who wrote Dune?", namespace="team")
    assert local.record_outcome(request_id=again.request_id, reward=1.0).client_id == "local"


def test_another_clients_copy_of_a_case_keeps_the_case_and_says_so(memory: Memory) -> None:
    alice, bob = as_(memory, "alice", "team"), as_(memory, "bob", "team")
    case = {"task": "Integrate x squared", "plan": "Use sympy", "answer": "x**3/3"}
    first = alice.record_outcome(**case, reward=1.0)
    other = bob.record_outcome(**case, reward=0.0)
    assert other.case_id == first.case_id and not other.duplicate
    assert other.reward == 0.0 and other.case_reward == 1.0  # the receipt tells the truth
    assert memory.get_case(first.case_id).reward == 1.0
    assert memory.get_case(first.case_id).client_id == "alice"
    taught = memory.bank.case_outcomes(first.case_id)
    assert sorted((t["client_id"], t["reward"]) for t in taught) == [("alice", 1.0), ("bob", 0.0)]


def test_reads_and_deletes_outside_the_namespaces_look_like_missing_cases(memory: Memory) -> None:
    alice, bob = as_(memory, "alice", "team-a"), as_(memory, "bob", "team-b")
    bobs = bob.record_outcome(task="Capital of Australia", plan="Look it up", reward=1.0).case_id
    assert bobs is not None
    for action in (alice.get_case, alice.delete_case):
        with pytest.raises(NotFound) as theirs:
            action(bobs)
        with pytest.raises(NotFound) as nobodys:
            action(bobs + 100)
        assert str(theirs.value).replace(str(bobs), "N") == str(nobodys.value).replace(
            str(bobs + 100), "N"
        )
    assert bob.get_case(bobs).namespace == "team-b"
    assert [ns.namespace for ns in alice.stats().namespaces] == []
    with pytest.raises(Forbidden):
        alice.record_outcome(task="t", plan="p", reward=1.0, namespace="team-b")


def test_writes_past_the_limit_are_refused_and_change_nothing(memory: Memory) -> None:
    frozen = RateLimiter(clock=lambda: 0.0)  # time stands still: no refill
    writer = TenantMemory(memory, Principal("writer", None, writes_per_minute=6), frozen)
    kept = writer.record_outcome(task="First task", plan="p", reward=1.0).case_id  # a burst of 1
    before = memory.stats()
    with pytest.raises(RateLimited, match="6 writes per minute"):
        writer.record_outcome(task="Second task", plan="p", reward=1.0)
    with pytest.raises(RateLimited):
        writer.delete_case(kept)  # type: ignore[arg-type]
    assert memory.stats() == before
