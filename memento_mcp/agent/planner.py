"""The planner: one JSON contract for both of its moves.

    {"plan": [{"id": 1, "description": "..."}, ...]}   work remains
    {"final_answer": "..."}                            the task is answered

The reply is parsed tolerantly (fences and prose around the object are fine). A reply that still
breaks the contract is sent back once with the parse error; a second failure raises LLMBadReply,
which the loop turns into a clean `failed` result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from memento_mcp.agent import prompts
from memento_mcp.agent.llm import LLM, Reply, parse_json_object
from memento_mcp.agent.steps import PlanItem, SubtaskResult, Usage
from memento_mcp.errors import LLMBadReply
from memento_mcp.models import CaseHit

CONTRACT = '{"plan": [{"id": 1, "description": "..."}]} or {"final_answer": "..."}'


@dataclass
class Decision:
    plan: list[PlanItem] | None = None
    final_answer: str | None = None


def parse_decision(text: str | None, *, max_subtasks: int = 8) -> Decision:
    """Validate a planner reply; ValueError messages are written for the model to read."""
    obj = parse_json_object(text)
    if "final_answer" in obj:
        answer = obj["final_answer"]
        if isinstance(answer, (int, float)) and not isinstance(answer, bool):
            answer = str(answer)
        if not isinstance(answer, str) or not answer.strip():
            raise ValueError('"final_answer" must be a non-empty string')
        return Decision(final_answer=answer.strip())
    if "plan" in obj:
        raw = obj["plan"]
        if not isinstance(raw, list) or not raw:
            raise ValueError('"plan" must be a non-empty list of {"id", "description"} objects')
        items: list[PlanItem] = []
        for i, entry in enumerate(raw[:max_subtasks], start=1):
            if isinstance(entry, str) and entry.strip():
                entry = {"id": i, "description": entry}
            if not isinstance(entry, dict) or not str(entry.get("description", "")).strip():
                raise ValueError(f'plan item {i} needs a non-empty "description"')
            item_id = entry.get("id", i)
            if not isinstance(item_id, (int, str)) or isinstance(item_id, bool):
                item_id = i
            items.append(PlanItem(id=item_id, description=str(entry["description"]).strip()))
        return Decision(plan=items)
    keys = ", ".join(sorted(obj)) or "none"
    raise ValueError(f'the object has keys ({keys}) but needs "plan" or "final_answer"')


def render_history(subtasks: list[SubtaskResult]) -> str:
    if not subtasks:
        return "(nothing yet)"
    lines: list[str] = []
    cycle = None
    for s in subtasks:
        if s.cycle != cycle:
            cycle = s.cycle
            lines.append(f"-- cycle {cycle} --")
        lines.append(s.render())
    return "\n".join(lines)


async def decide(
    llm: LLM,
    *,
    task: str,
    positive: list[CaseHit],
    negative: list[CaseHit],
    history: list[SubtaskResult],
    tools_catalog: str,
    usage: Usage,
    max_subtasks: int = 6,
    last_cycle: bool = False,
) -> Decision:
    """Ask for a plan or the final answer; one corrective retry on a malformed reply."""
    if history:
        history_text = "Results of the subtasks executed so far:\n" + render_history(history)
        instruction = (
            "Reply with the final answer if these results answer the task, otherwise with "
            "a new plan for the remaining work."
        )
        if last_cycle:
            instruction += " This is the last planning cycle that will be executed."
    else:
        history_text = ""
        instruction = "Reply with a plan, or with the final answer if no tools are needed."
    messages: list[dict[str, Any]] = [
        {
            "role": "system",
            "content": prompts.render("planner", tools=tools_catalog, max_subtasks=max_subtasks),
        },
        {
            "role": "user",
            "content": prompts.render(
                "planner_user",
                task=task,
                cases=prompts.render_cases(positive, negative),
                history=history_text,
                instruction=instruction,
            ),
        },
    ]
    reply = await _ask(llm, messages, usage)
    try:
        return parse_decision(reply.content, max_subtasks=max_subtasks)
    except ValueError as exc:
        first = str(exc)
        messages.append(reply.assistant_message())
        messages.append(
            {
                "role": "user",
                "content": (
                    f"Your reply could not be used: {first}. Reply again with one JSON object and nothing "
                    f"else: {CONTRACT}"
                ),
            }
        )
    reply = await _ask(llm, messages, usage)
    try:
        return parse_decision(reply.content, max_subtasks=max_subtasks)
    except ValueError as second:
        raise LLMBadReply(
            f"The planner broke the JSON contract twice ({first}; then {second}). "
            f"Last reply began: {(reply.content or '')[:200]!r}"
        ) from second


async def _ask(llm: LLM, messages: list[dict[str, Any]], usage: Usage) -> Reply:
    reply = await llm.complete(messages, json_reply=True)
    usage.add_reply(reply)
    return reply
