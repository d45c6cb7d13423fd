"""What a solve_task run produces: plan items, tool steps, subtask results and the SolveResult.

These are pydantic models because they cross the wire (the solve_task tool returns SolveResult) and
are stored as the case's trajectory. Each record renders itself for the next prompt (`render`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Status = Literal["answered", "best_effort", "failed"]
"""answered: the planner gave a final answer. best_effort: cycles or the deadline ran out and one
last call summarised what was known. failed: no answer (the LLM failed or broke the JSON contract)."""

SHORT_RESULT_CHARS = 500


class PlanItem(BaseModel):
    id: int | str
    description: str


class ToolStep(BaseModel):
    """One tool call the executor made, with a short result (the model saw the full one)."""

    cycle: int
    subtask: int | str
    tool: str
    arguments: dict[str, Any] | str
    result: str
    is_error: bool = False
    elapsed_s: float = 0.0


class SubtaskResult(BaseModel):
    """How one plan item ended: the executor's summary, or why it stopped."""

    cycle: int
    id: int | str
    description: str
    status: Literal["done", "step_limit", "error", "deadline", "budget"]
    result: str
    tool_calls: int = 0

    def render(self) -> str:
        note = "" if self.status == "done" else f" [{self.status}]"
        # Capped so that many cycles of verbose results cannot crowd the task out of the prompt.
        return f"Subtask {self.id}{note}: {self.description}\nResult: {short(self.result, 2000)}"


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_calls: int = 0
    tool_calls: int = 0
    llm_s: float = Field(0.0, description="Seconds spent waiting for the LLM")
    tool_s: float = Field(0.0, description="Seconds spent in child tool calls")
    memory_s: float = Field(0.0, description="Seconds spent retrieving cases and storing the run")
    wall_s: float = Field(0.0, description="Wall-clock seconds of the whole run")

    def add_reply(self, reply: Any) -> None:
        """Count one LLM reply (llm.Reply): tokens and latency."""
        self.llm_calls += 1
        self.prompt_tokens += reply.usage.prompt_tokens
        self.completion_tokens += reply.usage.completion_tokens
        self.llm_s += reply.latency_s


class Judgement(BaseModel):
    reward: float = Field(ge=0.0, le=1.0)
    method: Literal["exact_match", "llm_judge"]
    detail: str = ""


class SolveResult(BaseModel):
    """What solve_task returns. Report how it went with record_outcome(request_id=..., reward=...)."""

    answer: str
    status: Status
    plan: list[PlanItem] = Field(
        default_factory=list, description="The last plan that was executed"
    )
    steps: list[ToolStep] = Field(default_factory=list)
    subtasks: list[SubtaskResult] = Field(default_factory=list)
    cases_used: list[int] = Field(default_factory=list, description="case_ids shown to the planner")
    request_id: str | None = Field(None, description="Pass to record_outcome to report the reward")
    case_id: int | None = Field(None, description="The stored case (reward pending until reported)")
    cycles: int = 0
    error: str | None = Field(None, description="Why the run failed or fell back to a best effort")
    judgement: Judgement | None = None
    usage: Usage = Field(default_factory=Usage)

    def trajectory(self) -> list[dict[str, Any]]:
        """The steps as stored with the case."""
        return [s.model_dump() for s in self.subtasks] + [
            {"tool_step": s.model_dump()} for s in self.steps
        ]


def plan_json(plan: list[PlanItem]) -> str:
    """Memento's plan format, as stored in the case bank."""
    import json

    return json.dumps({"plan": [p.model_dump() for p in plan]}, ensure_ascii=False)


def short(text: str, limit: int = SHORT_RESULT_CHARS) -> str:
    return text if len(text) <= limit else f"{text[:limit]}… [{len(text) - limit} more chars]"
