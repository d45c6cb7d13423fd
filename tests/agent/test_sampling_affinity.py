"""solve_task's sampling rounds live in the replica that started them: a round that a load
balancer sends elsewhere is told so, in words that say what to configure (issue 11)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from memento_mcp.agent.sampling import SamplingBridge
from memento_mcp.errors import LLMError

pytestmark = pytest.mark.anyio


async def never_started(*_: Any) -> Any:
    raise AssertionError("a continuation round must not start a new run")


def round_context(request_state: str) -> SimpleNamespace:
    """What a continuation round carries: the run's request_state and the client's reply."""
    return SimpleNamespace(request_state=request_state, input_responses={SamplingBridge.KEY: {}})


async def test_a_round_of_another_replicas_run_asks_for_session_affinity() -> None:
    here, there = SamplingBridge(spawn=lambda _: None), SamplingBridge(spawn=lambda _: None)
    there.replica = "0badc0de"  # another process
    with pytest.raises(LLMError, match="held by another server replica.*session affinity"):
        await here.round(round_context(f"{there.replica}.token"), never_started)


async def test_a_round_of_this_replicas_forgotten_run_says_to_start_again() -> None:
    bridge = SamplingBridge(spawn=lambda _: None)
    with pytest.raises(LLMError, match="no longer known to the server"):
        await bridge.round(round_context(f"{bridge.replica}.token"), never_started)
