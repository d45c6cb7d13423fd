"""The executor: one subtask, run with OpenAI tool calling over the child servers' tools.

Bounded by `max_steps` tool rounds. Every fault of the model or a tool is data: bad arguments, an
unknown tool, a tool's isError, a crashed child all reach the model as an error tool message and
are recorded on the step. The context is trimmed by whole rounds (an assistant message together
with its tool results), so a tool result never loses its call and the task is never dropped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import anyio

from memento_mcp.agent import prompts
from memento_mcp.agent.llm import LLM, ToolCall
from memento_mcp.agent.steps import PlanItem, SubtaskResult, ToolStep, Usage, short
from memento_mcp.agent.toolhub import ToolOutcome

StepCallback = Callable[[ToolStep], Awaitable[None]]
MAX_CALLS_PER_ROUND = 16


class Tools(Protocol):
    """What the executor needs from a ToolHub."""

    def openai_tools(self) -> list[dict[str, Any]]: ...

    async def call(self, name: str, arguments: dict[str, Any]) -> ToolOutcome: ...


def _chars(message: dict[str, Any]) -> int:
    size = len(message.get("content") or "")
    for call in message.get("tool_calls", []):
        size += len(call["function"]["arguments"]) + len(call["function"]["name"])
    return size


def trim_messages(messages: list[dict[str, Any]], budget_chars: int) -> list[dict[str, Any]]:
    """Drop the oldest tool rounds until the messages fit; keep the system and task messages.

    messages = [system, user(task), (assistant [+ tool results])*]. A round is an assistant
    message with the tool messages that answer it; rounds go whole, and the latest always stays.
    """
    head, rest = messages[:2], messages[2:]
    rounds: list[list[dict[str, Any]]] = []
    for message in rest:
        if message["role"] == "tool" and rounds:
            rounds[-1].append(message)
        else:
            rounds.append([message])
    total = sum(_chars(m) for m in messages)
    dropped = 0
    while total > budget_chars and len(rounds) > 1:
        total -= sum(_chars(m) for m in rounds.pop(0))
        dropped += 1
    if not dropped:
        return messages
    note = f"\n\n[{dropped} earlier tool round(s) were removed to fit the context window.]"
    task = {**head[1], "content": (head[1].get("content") or "") + note}
    return [head[0], task] + [m for r in rounds for m in r]


def _arguments(call: ToolCall) -> dict[str, Any] | str:
    """The parsed arguments, or a message for the model saying why they are unusable."""
    try:
        value = json.loads(call.arguments or "{}")
    except json.JSONDecodeError as exc:
        return f"the arguments were not valid JSON ({exc.msg}); send a JSON object"
    if not isinstance(value, dict):
        return "the arguments must be a JSON object"
    return value


async def run_subtask(
    llm: LLM,
    tools: Tools,
    *,
    task: str,
    item: PlanItem,
    history: str,
    cycle: int,
    usage: Usage,
    steps: list[ToolStep],
    max_steps: int = 8,
    context_chars: int = 60_000,
    on_step: StepCallback | None = None,
) -> SubtaskResult:
    """Run one plan item to a plain-text result, or stop at the step limit."""
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": prompts.render("executor", max_steps=max_steps)},
        {
            "role": "user",
            "content": prompts.render(
                "executor_user",
                task=task,
                history=history or "(none yet)",
                subtask_id=item.id,
                subtask=item.description,
            ),
        },
    ]
    specs = tools.openai_tools()
    rounds = 0
    last_output = ""
    while True:
        messages = trim_messages(messages, context_chars)
        # After the last tool round the model is asked once more, without tools, to report.
        offer = specs if specs and rounds < max_steps else None
        reply = await llm.complete(messages, tools=offer)
        usage.add_reply(reply)
        text = (reply.content or "").strip()
        if not reply.tool_calls:
            return SubtaskResult(
                cycle=cycle,
                id=item.id,
                description=item.description,
                status="done" if text else "error",
                result=text or "(the executor replied with nothing)",
                tool_calls=_calls(steps, cycle, item),
            )
        if offer is None:
            return SubtaskResult(
                cycle=cycle,
                id=item.id,
                description=item.description,
                status="step_limit",
                result=_limit_note(max_steps, last_output),
                tool_calls=_calls(steps, cycle, item),
            )
        rounds += 1
        messages.append(reply.assistant_message())
        outcomes = await _run_calls(tools, reply.tool_calls, usage)
        for call, args, outcome in outcomes:
            content = outcome.text
            if outcome.is_error and not content.startswith("Error"):
                content = f"Error: {content}"
            messages.append({"role": "tool", "tool_call_id": call.id, "content": content})
            last_output = content
            step = ToolStep(
                cycle=cycle,
                subtask=item.id,
                tool=call.name,
                arguments=args if isinstance(args, dict) else call.arguments,
                result=short(outcome.text),
                is_error=outcome.is_error,
                elapsed_s=round(outcome.elapsed_s, 4),
            )
            steps.append(step)
            if on_step is not None:
                await on_step(step)


async def _run_calls(
    tools: Tools, calls: list[ToolCall], usage: Usage
) -> list[tuple[ToolCall, dict[str, Any] | str, ToolOutcome]]:
    """Run one reply's tool calls concurrently (the model sent them as independent); results keep
    the order of the calls. Tool time is the wall time of the batch, not the sum of the calls."""
    parsed = [_arguments(call) for call in calls]
    outcomes: list[ToolOutcome] = [ToolOutcome("", True, 0.0)] * len(calls)

    async def run(index: int, arguments: dict[str, Any]) -> None:
        outcomes[index] = await tools.call(calls[index].name, arguments)

    started = time.perf_counter()
    ran = 0
    async with anyio.create_task_group() as tg:
        for index, args in enumerate(parsed):
            if index >= MAX_CALLS_PER_ROUND:
                limit = f"Error: not run; at most {MAX_CALLS_PER_ROUND} tool calls per reply."
                outcomes[index] = ToolOutcome(limit, True, 0.0)
            elif isinstance(args, str):
                outcomes[index] = ToolOutcome(f"Error: {args}", True, 0.0)
            else:
                ran += 1
                tg.start_soon(run, index, args)
    if ran:
        usage.tool_calls += ran
        usage.tool_s += time.perf_counter() - started
    return list(zip(calls, parsed, outcomes, strict=True))


def _calls(steps: list[ToolStep], cycle: int, item: PlanItem) -> int:
    return sum(1 for s in steps if s.cycle == cycle and s.subtask == item.id)


def _limit_note(max_steps: int, last_text: str) -> str:
    return (
        f"Stopped at the limit of {max_steps} tool rounds without a result. "
        f"Last tool output: {short(last_text, 300) or '(none)'}"
    )
