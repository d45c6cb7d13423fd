"""Pydantic models shared by the MCP tools, the CLI and the library: the wire contract."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, Field

POSITIVE_REWARD = 0.5
"""A case whose reward is at least this is a positive example; below it, a negative one."""


class Case(BaseModel):
    """A past task with the plan that was tried, its answer and how it went."""

    case_id: int
    namespace: str
    task: str
    plan: str = Field(description="Plain text, or Memento's JSON {'plan': [{'id', 'description'}]}")
    answer: str = ""
    reward: float | None = Field(description="0..1; null while the outcome is pending")
    source: str = Field(description="Where the case came from: agent, import, solve_task")
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: str
    trajectory: list[dict[str, Any]] | None = Field(
        default=None, description="The steps solve_task took, when the case came from it"
    )
    client_id: str | None = Field(
        default=None,
        description="Who wrote it: the token's name ('local' for stdio and the CLI); null for"
        " imported cases and cases stored before provenance was kept",
    )

    @property
    def label(self) -> Literal["positive", "negative", "pending"]:
        if self.reward is None:
            return "pending"
        return "positive" if self.reward >= POSITIVE_REWARD else "negative"


class CaseHit(BaseModel):
    """One retrieved case, with why it was ranked where it was."""

    case_id: int
    task: str
    plan: str
    answer: str
    reward: float | None
    label: Literal["positive", "negative", "pending"]
    score: float = Field(description="Estimated probability (0..1) that this case helps the query")
    similarity: float = Field(description="Cosine similarity between the query and the case task")
    rank: int


class RetrieveResult(BaseModel):
    """What retrieve_cases returns: keep request_id to report the outcome later."""

    request_id: str
    namespace: str
    scorer: str = Field(
        description="'cosine' (similarity ranking), 'evidence' (outcomes so far), or"
        " 'evidence+<version>' when a trained model also ranks untried cases"
    )
    positive: list[CaseHit]
    negative: list[CaseHit]
    abstain: bool = Field(
        False, description="True when no stored case is likely to help: work without one"
    )
    abstain_reason: str | None = None

    @property
    def cases(self) -> list[CaseHit]:
        return sorted(self.positive + self.negative, key=lambda hit: hit.rank)


class OutcomeReceipt(BaseModel):
    """What record_outcome returns: what the bank now holds, not merely what was sent."""

    case_id: int | None = Field(description="The stored case, or null when only impressions were labelled")
    request_id: str | None
    reward: float = Field(description="The reward this outcome carries")
    labelled_impressions: int = Field(description="How many shown cases this reward credited")
    case_reward: float | None = Field(
        None,
        description="The reward the stored case holds now; it differs from `reward` when the"
        " case already existed (another client stored it first) and was left as it was",
    )
    duplicate: bool = Field(
        False,
        description="True when this client had already reported this outcome (same request,"
        " same case): nothing was changed and this receipt repeats the first one",
    )
    client_id: str | None = Field(None, description="Who the outcome is recorded for")
    recorded_at: str | None = Field(None, description="When the outcome was recorded (UTC)")


class DeleteReceipt(BaseModel):
    case_id: int
    deleted: bool


class NamespaceStats(BaseModel):
    namespace: str
    cases: int
    positive: int
    negative: int
    pending: int


class BankStats(BaseModel):
    path: str
    read_only: bool = Field(
        False, description="The bank file is read-only to the server: retrieval works, but"
        " outcomes and new cases cannot be recorded (nor retrievals logged)"
    )
    schema_version: int
    encoder: str
    cases: int
    requests: int
    impressions: int
    labelled_impressions: int
    namespaces: list[NamespaceStats]
    ranking: str = Field(description="learned (outcomes re-rank at once) or similarity")
    index: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Per namespace: searched exactly or through the ANN index, and whether the"
        " index file is being rebuilt (answers stay exact meanwhile)",
    )


def plan_text(plan: str | dict[str, Any] | list[Any]) -> str:
    """Plans arrive as text or as Memento's JSON; both are stored as the text the agent wrote."""
    if isinstance(plan, str):
        return plan
    return json.dumps(plan, ensure_ascii=False)
