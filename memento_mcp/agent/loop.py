"""solve(): Memento's plan → execute → replan-or-answer loop, bounded in cycles, steps and time.

    retrieve cases ─► planner ─► plan? ─► executor runs each subtask (tool calls) ─► planner ...
                              └► final_answer ─► store the trajectory (reward pending) ─► judge?

At most `max_cycles` plans are executed. When the cycles or the deadline run out, one final call
asks for the best answer from what is known (status "best_effort"). LLM failures and broken JSON
end the run with status "failed" and the reason; bugs in our code raise. Client cancellation
propagates (nothing is stored for a cancelled run).
"""

from __future__ import annotations

import functools
import inspect
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import anyio

from memento_mcp.agent import prompts
from memento_mcp.agent.executor import Tools, run_subtask
from memento_mcp.agent.judge import judge
from memento_mcp.agent.llm import LLM, parse_json_object
from memento_mcp.agent.planner import decide, render_history
from memento_mcp.agent.steps import (
    PlanItem,
    SolveResult,
    SubtaskResult,
    ToolStep,
    Usage,
    plan_json,
    short,
)
from memento_mcp.errors import LLMError, MementoError
from memento_mcp.models import CaseHit, RetrieveResult

ProgressCallback = Callable[[float, float | None, str], Awaitable[None]]


class MemoryLike(Protocol):
    """What the loop needs from memento_mcp.memory.Memory (methods may be sync or async)."""

    def retrieve(self, query: str, k: int = 4, namespace: str | None = None) -> Any: ...

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
    ) -> Any: ...

    def record_outcome(
        self, *, request_id: str | None = None, reward: float | None = None
    ) -> Any: ...


class ToolCatalog(Tools, Protocol):
    def catalog(self) -> str: ...


@dataclass
class Limits:
    max_cycles: int = 3
    max_steps: int = 8
    max_subtasks: int = 6
    deadline_s: float = 600.0
    final_call_s: float = 120.0
    context_chars: int = 60_000
    k: int = 4
    max_tokens: int | None = 500_000
    """Prompt + completion tokens over the whole run (the final answer call is exempt)."""


class _BudgetExhausted(Exception):
    """Internal: the token budget is spent; solve() turns it into a best-effort answer."""


class _Budgeted:
    """An LLM that refuses to start a call once the run's token budget is spent."""

    def __init__(self, llm: LLM, usage: Usage, limit: int | None) -> None:
        self.llm, self.usage, self.limit = llm, usage, limit
        self.name = llm.name

    async def complete(self, messages: list[dict[str, Any]], **kwargs: Any) -> Any:
        spent = self.usage.prompt_tokens + self.usage.completion_tokens
        if self.limit is not None and spent >= self.limit:
            raise _BudgetExhausted(spent)
        return await self.llm.complete(messages, **kwargs)


def _accepts(method: Callable[..., Any], name: str) -> bool:
    """Does this Memory method take `name`? (The impressions' source, where Memory records it.)"""
    try:
        return name in inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False


async def _call(usage: Usage, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a Memory method: async ones are awaited, sync ones (SQLite, the encoder) run in a worker
    thread so that concurrent solves keep the event loop free. The time goes to usage.memory_s."""
    started = time.perf_counter()
    try:
        if inspect.iscoroutinefunction(method):
            return await method(*args, **kwargs)
        return await anyio.to_thread.run_sync(functools.partial(method, *args, **kwargs))
    finally:
        usage.memory_s += time.perf_counter() - started


async def solve(
    task: str,
    *,
    planner: LLM,
    executor: LLM,
    tools: ToolCatalog,
    memory: MemoryLike | None = None,
    namespace: str | None = None,
    limits: Limits | None = None,
    expected_answer: str | None = None,
    judge_llm: LLM | None = None,
    on_progress: ProgressCallback | None = None,
) -> SolveResult:
    """Solve one task; always returns a SolveResult (answer or a clear failure status)."""
    limits = limits or Limits()
    started = time.perf_counter()
    usage = Usage()
    progress_count = 0

    async def progress(message: str) -> None:
        nonlocal progress_count
        progress_count += 1
        if on_progress is not None:
            await on_progress(float(progress_count), None, message)

    positive: list[CaseHit] = []
    negative: list[CaseHit] = []
    request_id: str | None = None
    if memory is not None:
        extra = {"source": "solve_task"} if _accepts(memory.retrieve, "source") else {}
        retrieved: RetrieveResult = await _call(
            usage, memory.retrieve, task, k=limits.k, namespace=namespace, **extra
        )
        positive, negative, request_id = (
            retrieved.positive,
            retrieved.negative,
            retrieved.request_id,
        )
        await progress(f"retrieved {len(positive)} positive and {len(negative)} negative cases")
    cases_used = [h.case_id for h in sorted(positive + negative, key=lambda h: h.rank)]

    subtasks: list[SubtaskResult] = []
    steps: list[ToolStep] = []
    plan: list[PlanItem] = []
    answer: str | None = None
    status = "failed"
    error: str | None = None
    cycles = 0
    current: PlanItem | None = None
    llm_failed = False

    async def on_step(step: ToolStep) -> None:
        mark = " (error)" if step.is_error else ""
        await progress(f"cycle {step.cycle} subtask {step.subtask}: {step.tool}{mark}")

    budgeted_planner = _Budgeted(planner, usage, limits.max_tokens)
    budgeted_executor = _Budgeted(executor, usage, limits.max_tokens)
    with anyio.move_on_after(limits.deadline_s) as deadline:
        try:
            for cycle in range(1, limits.max_cycles + 1):
                await progress(f"planning cycle {cycle}")
                decision = await decide(
                    budgeted_planner,
                    task=task,
                    positive=positive,
                    negative=negative,
                    history=subtasks,
                    tools_catalog=tools.catalog(),
                    usage=usage,
                    max_subtasks=limits.max_subtasks,
                    last_cycle=cycle == limits.max_cycles,
                )
                if decision.final_answer is not None:
                    answer, status = decision.final_answer, "answered"
                    break
                assert decision.plan is not None
                cycles, plan = cycle, decision.plan
                for item in plan:
                    current = item
                    await progress(
                        f"cycle {cycle} subtask {item.id}: {short(item.description, 80)}"
                    )
                    subtasks.append(
                        await run_subtask(
                            budgeted_executor,
                            tools,
                            task=task,
                            item=item,
                            history=render_history(subtasks),
                            cycle=cycle,
                            usage=usage,
                            steps=steps,
                            max_steps=limits.max_steps,
                            context_chars=limits.context_chars,
                            on_step=on_step,
                        )
                    )
                    current = None
        except LLMError as exc:
            llm_failed, error = True, f"{type(exc).__name__}: {exc}"
        except _BudgetExhausted as exc:
            error = f"the token budget of {limits.max_tokens} ran out ({exc.args[0]} used)"
            if current is not None:
                subtasks.append(
                    SubtaskResult(
                        cycle=cycles,
                        id=current.id,
                        description=current.description,
                        status="budget",
                        result="stopped: the token budget ran out",
                    )
                )
    if deadline.cancelled_caught:
        if current is not None:
            subtasks.append(
                SubtaskResult(
                    cycle=cycles,
                    id=current.id,
                    description=current.description,
                    status="deadline",
                    result="interrupted by the deadline",
                )
            )
        error = f"the deadline of {limits.deadline_s:g}s ran out"
    elif answer is None and error is None:
        error = f"no final answer after {limits.max_cycles} planning cycles"

    if answer is None and not llm_failed:
        await progress("asking for the best answer from what is known")
        try:
            with anyio.fail_after(limits.final_call_s):
                answer = await _final_answer(planner, task, subtasks, usage)
            status = "best_effort"
        except (LLMError, TimeoutError) as exc:
            error = f"{error}; the final answer call failed: {type(exc).__name__}: {exc}"

    result = SolveResult(
        answer=answer or "",
        status=status if answer else "failed",
        plan=plan,
        steps=steps,
        subtasks=subtasks,
        cases_used=cases_used,
        request_id=request_id,
        cycles=cycles,
        error=error,
    )
    if memory is not None and answer and request_id is not None:
        try:
            result.case_id = await _call(
                usage,
                memory.store_trajectory,
                request_id=request_id,
                task=task,
                plan=plan_json(plan) if plan else answer,
                answer=answer,
                trajectory=result.trajectory(),
                namespace=namespace,
                metadata={"source": "solve_task", "status": result.status, "cycles": cycles},
            )
        except MementoError as exc:  # the answer is still worth returning
            result.error = _join(result.error, f"the run was not stored: {exc}")
    if expected_answer is not None and answer:
        try:
            result.judgement = await judge(
                task, answer, expected_answer, llm=judge_llm, usage=usage
            )
        except LLMError as exc:
            result.error = _join(result.error, f"the judge failed: {exc}")
        if result.judgement is not None and memory is not None and request_id is not None:
            try:
                await _call(
                    usage,
                    memory.record_outcome,
                    request_id=request_id,
                    reward=result.judgement.reward,
                )
            except MementoError as exc:
                result.error = _join(result.error, f"the outcome was not recorded: {exc}")
    if request_id is None:
        result.request_id = f"solve-{uuid.uuid4().hex}"
    await progress(f"done: {result.status}")
    usage.wall_s = time.perf_counter() - started
    result.usage = usage
    return result


def _join(first: str | None, second: str) -> str:
    return f"{first}; {second}" if first else second


async def _final_answer(llm: LLM, task: str, subtasks: list[SubtaskResult], usage: Usage) -> str:
    messages = [
        {"role": "system", "content": prompts.render("final")},
        {"role": "user", "content": f"Task:\n{task}\n\nWhat is known:\n{render_history(subtasks)}"},
    ]
    reply = await llm.complete(messages, json_reply=True)
    usage.add_reply(reply)
    try:
        value = parse_json_object(reply.content).get("final_answer")
        if value is not None and str(value).strip():
            return str(value).strip()
    except ValueError:
        pass
    # A model that ignores JSON still said something: its text is the best answer there is.
    return (reply.content or "").strip()
