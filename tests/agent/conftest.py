"""Fixtures for the agent tests: a scripted LLM endpoint, small tool sets, an in-test memory fake."""

from __future__ import annotations

import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from memento_mcp.agent.llm import OpenAILLM, RetryPolicy, make_client
from memento_mcp.agent.scripted import Script, ScriptedServer
from memento_mcp.agent.toolhub import ToolOutcome
from memento_mcp.models import CaseHit, OutcomeReceipt, RetrieveResult

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def child_config() -> Callable[..., dict[str, Any]]:
    """child_config(**env) -> mcpServers config for tests/agent/child_tools.py as server "calc"."""
    return lambda **env: {
        "mcpServers": {
            "calc": {
                "command": sys.executable,
                "args": [str(HERE / "child_tools.py")],
                "env": {
                    "FASTMCP_LOG_LEVEL": "ERROR",
                    "FASTMCP_CHECK_FOR_UPDATES": "off",
                    "FASTMCP_SHOW_SERVER_BANNER": "false",
                    **env,
                },
            }
        }
    }


class FakeTools:
    """In-process tools with the ToolHub surface, for fast loop tests."""

    def __init__(self, functions: dict[str, Callable[..., Any]]) -> None:
        self.functions = functions
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def require_tools(self) -> None:
        pass

    async def close(self) -> None:
        pass

    def openai_tools(self) -> list[dict[str, Any]]:
        return [
            {
                "type": "function",
                "function": {
                    "name": n,
                    "description": f.__doc__ or "",
                    "parameters": {"type": "object", "properties": {}},
                },
            }
            for n, f in self.functions.items()
        ]

    def catalog(self) -> str:
        return "\n".join(f"- {n}: {f.__doc__ or ''}" for n, f in self.functions.items())

    async def call(self, name: str, arguments: dict[str, Any]) -> ToolOutcome:
        self.calls.append((name, arguments))
        started = time.perf_counter()
        if name not in self.functions:
            return ToolOutcome(f"Unknown tool {name!r}", True, 0.0)
        try:
            value = self.functions[name](**arguments)
        except Exception as exc:  # noqa: BLE001 - like a tool's isError
            return ToolOutcome(str(exc), True, time.perf_counter() - started)
        return ToolOutcome(str(value), False, time.perf_counter() - started)


@pytest.fixture
def calc_tools() -> FakeTools:
    def add(a: float, b: float) -> float:
        """Add two numbers."""
        return a + b

    def multiply(a: float, b: float) -> float:
        """Multiply two numbers."""
        return a * b

    def fail(message: str) -> str:
        """Always fails."""
        raise ValueError(message)

    return FakeTools({"calc_add": add, "calc_multiply": multiply, "calc_fail": fail})


def hit(case_id: int, task: str, reward: float, rank: int) -> CaseHit:
    label = "positive" if reward >= 0.5 else "negative"
    return CaseHit(
        case_id=case_id,
        task=task,
        plan=f"plan of case {case_id}",
        answer=f"answer {case_id}",
        reward=reward,
        label=label,
        score=0.5,
        similarity=0.9,
        rank=rank,
    )


class FakeMemory:
    """The Memory interface (retrieve / store_trajectory / record_outcome) over plain lists."""

    def __init__(self, hits: list[CaseHit] | None = None) -> None:
        self.hits = hits or []
        self.retrievals: list[str] = []
        self.cases: dict[int, dict[str, Any]] = {}
        self.outcomes: list[dict[str, Any]] = []

    def retrieve(self, query: str, k: int = 4, namespace: str | None = None) -> RetrieveResult:
        request_id = f"req-{len(self.retrievals) + 1}"
        self.retrievals.append(query)
        shown = self.hits[:k]
        return RetrieveResult(
            request_id=request_id,
            namespace=namespace or "default",
            scorer="cosine",
            positive=[h for h in shown if h.label == "positive"],
            negative=[h for h in shown if h.label == "negative"],
        )

    def store_trajectory(
        self,
        *,
        request_id: str,
        task: str,
        plan: str,
        answer: str,
        trajectory: list[dict[str, Any]],
        namespace: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> int:
        case_id = 100 + len(self.cases)
        self.cases[case_id] = {
            "request_id": request_id,
            "task": task,
            "plan": plan,
            "answer": answer,
            "trajectory": trajectory,
            "reward": None,
            "metadata": metadata,
        }
        return case_id

    def record_outcome(
        self, *, request_id: str | None = None, reward: float | None = None, **kwargs: Any
    ) -> OutcomeReceipt:
        self.outcomes.append({"request_id": request_id, "reward": reward, **kwargs})
        case_id = next(
            (cid for cid, c in self.cases.items() if c["request_id"] == request_id), None
        )
        if case_id is not None:
            self.cases[case_id]["reward"] = reward
        assert reward is not None
        return OutcomeReceipt(
            case_id=case_id, request_id=request_id, reward=reward, labelled_impressions=0
        )


@pytest.fixture
def memory() -> FakeMemory:
    return FakeMemory()


@pytest.fixture
def memory_with() -> Callable[..., FakeMemory]:
    """memory_with((case_id, task, reward), ...) -> a FakeMemory that retrieves those cases in order."""
    return lambda *cases: FakeMemory(
        [hit(cid, task, reward, rank) for rank, (cid, task, reward) in enumerate(cases, start=1)]
    )


class LLMPair:
    """A scripted endpoint plus OpenAILLM clients for its planner and executor models."""

    def __init__(self, server: ScriptedServer, **llm_kwargs: Any) -> None:
        self.server = server
        self.script = server.script
        kwargs = {
            "timeout_s": 5.0,
            "retry": RetryPolicy(attempts=3, base_delay_s=0.01),
            **llm_kwargs,
        }
        client = make_client(
            base_url=server.base_url, api_key="test", timeout_s=kwargs["timeout_s"]
        )
        self.planner = OpenAILLM("planner", client=client, **kwargs)
        self.executor = OpenAILLM("executor", client=client, **kwargs)


@pytest.fixture
async def scripted() -> AsyncIterator[Callable[..., LLMPair]]:
    """scripted(planner=[...], executor=[...]) starts an endpoint; all are stopped after the test."""
    servers: list[ScriptedServer] = []

    def start(
        planner: list[Any] = (),
        executor: list[Any] = (),
        *,
        default: Any = None,
        latency_s: float = 0.0,
        **llm_kwargs: Any,
    ) -> LLMPair:
        server = ScriptedServer(
            Script({"planner": planner, "executor": executor}, default=default), latency_s=latency_s
        ).start()
        servers.append(server)
        pairs.append(LLMPair(server, **llm_kwargs))
        return pairs[-1]

    pairs: list[LLMPair] = []
    yield start
    for pair in pairs:
        await pair.planner.aclose()
    for server in servers:
        server.stop()
