"""What each dashboard page shows, computed from Memory: plain data for the templates."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal
from urllib.parse import urlencode

from starlette.datastructures import QueryParams

from memento_mcp.auth.tenant import TenantMemory
from memento_mcp.dashboard import charts

PAGE_SIZE = 25
TEACHERS = 20
LABELS = ("positive", "negative", "pending")


@dataclass(frozen=True)
class Filters:
    """The case list's search form; bad values fall back to 'no filter' rather than failing."""

    q: str = ""
    namespace: str = ""
    label: str = ""
    min_reward: str = ""
    page: int = 1

    @classmethod
    def from_query(cls, params: QueryParams) -> Filters:
        label = params.get("label", "")
        min_reward = params.get("min_reward", "").strip()
        try:
            if not 0.0 <= float(min_reward) <= 1.0:
                min_reward = ""
        except ValueError:
            min_reward = ""
        try:
            page = max(1, int(params.get("page", "1")))
        except ValueError:
            page = 1
        return cls(
            q=params.get("q", "")[:200],
            namespace=params.get("namespace", "")[:128],
            label=label if label in LABELS else "",
            min_reward=min_reward,
            page=page,
        )

    def link(self, **changes: Any) -> str:
        """The query string for these filters with `changes` applied, defaults left out."""
        fields = asdict(replace(self, **changes))
        return "?" + urlencode({k: v for k, v in fields.items() if v not in ("", 1)})


def index(tenant: TenantMemory, filters: Filters) -> dict[str, Any]:
    """The overview, within the namespaces the caller's token may read."""
    namespace = filters.namespace or None
    scope = tenant.scope
    bank = tenant.memory.bank
    label: Literal["positive", "negative", "pending"] | None = filters.label or None  # type: ignore[assignment]
    cases, total = bank.list_cases(
        namespace=namespace,
        search=filters.q or None,
        label=label,
        min_reward=float(filters.min_reward) if filters.min_reward else None,
        limit=PAGE_SIZE,
        offset=(filters.page - 1) * PAGE_SIZE,
        namespaces=scope,
    )
    versions = [
        v for v in bank.retriever_versions()
        if scope is None or v["namespace"] in scope
    ]  # fmt: skip
    return {
        "stats": tenant.stats(),
        "filters": filters,
        "cases": cases,
        "total": total,
        "pages": max(1, math.ceil(total / PAGE_SIZE)),
        "serving": [v for v in versions if v["active"]],
        "versions": versions[::-1][:10],
        "teachers": bank.teachers(scope)[:TEACHERS],
        "outcomes_chart": charts.outcomes_per_day(bank.outcomes_by_day(namespace, scope)),
        "curve_chart": charts.learning_curve(bank.reward_curve(namespace, namespaces=scope)),
    }


def case_page(tenant: TenantMemory, case_id: int) -> dict[str, Any]:
    """One case the caller may read (NotFound otherwise), with who taught it what."""
    case = tenant.get_case(case_id)
    return {
        "case": case,
        "plan_items": plan_items(case.plan),
        "steps": [describe_step(step) for step in case.trajectory or []],
        "metadata": json.dumps(case.metadata, indent=2, ensure_ascii=False)
        if case.metadata
        else "",
        "taught": tenant.memory.bank.case_outcomes(case.case_id),
    }


def plan_items(plan: str) -> list[str] | None:
    """Memento's JSON plan ({'plan': [{'id', 'description'}]}) as a list; None for free text."""
    try:
        data = json.loads(plan)
    except ValueError:
        return None
    items = data.get("plan") if isinstance(data, dict) else data
    if not isinstance(items, list) or not items:
        return None
    return [
        str(item.get("description", item)) if isinstance(item, dict) else str(item)
        for item in items
    ]


def describe_step(step: dict[str, Any]) -> dict[str, Any]:
    """One trajectory record (agent/steps.py: a subtask result, or {'tool_step': ...})."""
    if set(step) == {"tool_step"} and isinstance(step["tool_step"], dict):
        tool = step["tool_step"]
        return {
            "kind": "tool",
            "title": f"{tool.get('tool', 'tool')} (subtask {tool.get('subtask', '?')})",
            "status": "error" if tool.get("is_error") else "ok",
            "fields": _fields(tool, skip={"tool", "subtask", "is_error"}),
        }
    return {
        "kind": "subtask",
        "title": f"Subtask {step.get('id', '?')}: {step.get('description', '')}",
        "status": str(step.get("status", "")),
        "fields": _fields(step, skip={"id", "description", "status"}),
    }


def _fields(record: dict[str, Any], skip: set[str]) -> list[tuple[str, str]]:
    return [
        (key, value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
        for key, value in record.items()
        if key not in skip
    ]


def metric(value: Any) -> str:
    """A retriever metric for display: floats to 3 decimals, structures as compact JSON."""
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)
