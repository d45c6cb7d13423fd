"""Revoking a poisoner: its outcomes, labels and cases go; what others taught stays; the prior
trained on its labels stops serving, and the namespace retrains through retriever.job."""

from __future__ import annotations

import time

import numpy as np
import pytest
from typer.testing import CliRunner

from memento_mcp.auth.principal import Principal
from memento_mcp.auth.ratelimit import RateLimiter
from memento_mcp.auth.tenant import TenantMemory
from memento_mcp.casebank.connection import now
from memento_mcp.cli import app
from memento_mcp.memory import Memory, open_memory
from memento_mcp.revocation import parse_since, retrain_with, revoke_client
from memento_mcp.settings import Settings

pytestmark = pytest.mark.slow  # loads the encoder, trains once



@pytest.fixture
def settings(any_settings: Settings) -> Settings:
    """On each bank in turn. No background retrain while a test teaches: the test trains when
    it means to."""
    return any_settings.model_copy(update={"retrain_every": 10**6})


TASKS = [f"Find the population of city number {i} in the census" for i in range(12)]


def teach(memory: Memory, client: str, rewards: list[float]) -> None:
    tenant = TenantMemory(memory, Principal.of(client, ["*"]), RateLimiter())
    for i, reward in enumerate(rewards):
        shown = tenant.retrieve(TASKS[i % len(TASKS)], k=4)
        tenant.record_outcome(request_id=shown.request_id, reward=reward)


def seed_cases(memory: Memory) -> None:
    local = TenantMemory(memory, Principal.of("local", ["*"]), RateLimiter())
    for i, task in enumerate(TASKS):
        local.record_outcome(task=task, plan=f"Open census table {i}", reward=1.0)


def test_revoke_removes_a_clients_teaching_and_keeps_the_rest(memory: Memory) -> None:
    seed_cases(memory)
    teach(memory, "honest", [1.0] * 30)
    since = now()
    teach(memory, "poisoner", [0.0] * 30)
    poison = TenantMemory(memory, Principal.of("poisoner", ["*"]), RateLimiter())
    planted = poison.record_outcome(task="Find the population", plan="Say 42", reward=1.0)
    honest_labels = memory.bank.labelled_count("default")
    assert honest_labels > 0 and memory.get_case(planted.case_id)  # type: ignore[arg-type]
    before = memory.bank.training_set("default")
    poisoned = before.rewards == 0.0

    report = revoke_client(memory, "poisoner", since)

    after = memory.bank.training_set("default")
    assert report.outcomes == 31 and report.cases == 1 and report.namespaces == ["default"]
    assert report.labels == int(poisoned.sum()) == len(before) - len(after)
    assert (after.rewards == 1.0).all()  # only the honest labels remain
    assert {row["client_id"] for row in memory.bank.teachers()} == {"honest", "local"}
    with pytest.raises(Exception, match="no case with case_id"):
        memory.get_case(planted.case_id)  # type: ignore[arg-type]


def test_a_prior_trained_since_then_is_retired_and_the_namespace_retrained(
    memory: Memory,
) -> None:
    seed_cases(memory)
    teach(memory, "honest", [1.0, 0.0] * 30)
    memory.bank.add_retriever_version("q-before", "/nowhere/before.pt", {}, "default")
    memory.bank.activate_retriever("q-before")
    time.sleep(0.002)  # timestamps have millisecond resolution: `since` must come after q-before
    since = now()
    teach(memory, "poisoner", [0.0] * 20)
    memory.bank.add_retriever_version("q-poisoned", "/nowhere/poisoned.pt", {}, "default")
    memory.bank.activate_retriever("q-poisoned")

    report = revoke_client(memory, "poisoner", since, retrain_with(memory))

    assert report.rolled_back == {"default": "q-before"}
    run = report.retrained["default"]
    assert run["namespace"] == "default"
    if run["version"] is not None:  # trained: on the honest labels only
        assert run["metrics"]["n_labelled"] == memory.bank.labelled_count("default")
    assert memory.bank.labelled_count("default") == len(memory.bank.training_set("default"))
    assert (np.isin(memory.bank.training_set("default").rewards, [0.0, 1.0])).all()


def test_cli_revokes_by_client_and_time(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    memory = open_memory(settings)
    try:
        seed_cases(memory)
        teach(memory, "poisoner", [0.0] * 5)
    finally:
        memory.close()
    monkeypatch.setenv("MEMENTO_HOME", str(settings.home))
    if settings.database_url:
        monkeypatch.setenv("MEMENTO_DATABASE_URL", settings.database_url)
    listed = CliRunner().invoke(app, ["outcomes", "clients"])
    assert listed.exit_code == 0 and "poisoner" in listed.stdout and "local" in listed.stdout
    result = CliRunner().invoke(
        app, ["outcomes", "revoke", "--client", "poisoner", "--since", "2000-01-01", "--no-retrain"]
    )
    assert result.exit_code == 0, result.output
    assert "5 outcomes" in result.output and "0 cases" in result.output
    assert "poisoner" not in CliRunner().invoke(app, ["outcomes", "clients"]).stdout
    bad = CliRunner().invoke(app, ["outcomes", "revoke", "--client", "x", "--since", "yesterday"])
    assert bad.exit_code == 1 and "not an ISO date" in bad.output
    assert parse_since("2026-12-01T14:30+01:00") == "2026-12-01T13:30:00.000+00:00"


