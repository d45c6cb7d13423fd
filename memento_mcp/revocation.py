"""Undo a poisoner: remove one client's outcomes and cases since a time, and retrain without them.

Outcomes are the retriever's training signal, so a token that reported false rewards (memory
poisoning) leaves two marks: the per-case evidence its labels moved, and any prior model trained
on them. `revoke_client` removes the first in one transaction (casebank/provenance.py) and logs
the revocation, so the very next retrieval of any server on the bank ranks as if the labels had
never come (a running server rebuilds what it learnt in process, retriever.online); for the
second, every namespace it touched goes back to the prior model it served before `since` (or to
none), and is retrained through the usual path (retriever.job.run: embed plans, train, value
off-policy, promote only when better) on what remains.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from memento_mcp.errors import InvalidInput
from memento_mcp.memory import Memory

Retrain = Callable[[str], dict[str, Any]]
"""namespace -> the training run's record (retriever.job.run)."""


class RevokeReport(BaseModel):
    client_id: str
    since: str
    outcomes: int = Field(description="Outcome rows removed")
    labels: int = Field(description="Impression labels cleared")
    cases: int = Field(description="Cases the client wrote, deleted")
    namespaces: list[str]
    rolled_back: dict[str, str | None] = Field(
        default_factory=dict,
        description="Namespace -> the prior model serving again (None: no trained prior), where"
        " the one serving had been trained after `since`",
    )
    retrained: dict[str, dict[str, Any]] = Field(default_factory=dict)


def parse_since(text: str) -> str:
    """An ISO date or time (UTC unless it says otherwise) in the bank's timestamp format."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInput(
            f"--since {text!r} is not an ISO date or time; e.g. 2026-12-01 or 2026-12-01T14:30"
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def revoke_client(
    memory: Memory, client_id: str, since: str, retrain: Retrain | None = None
) -> RevokeReport:
    """Remove `client_id`'s outcomes, labels and cases from `since` on; then, per namespace
    touched, step back from priors trained since then and (with `retrain`) train anew."""
    removed = memory.bank.revoke_client(client_id, since)
    memory.index.invalidate()
    report = RevokeReport(client_id=client_id, since=since, **removed)
    for namespace in report.namespaces:
        active = memory.bank.active_retriever(namespace)
        if active is not None and active["created_at"] >= since:
            earlier = [
                v for v in memory.bank.retriever_versions(namespace)
                if v["promoted_at"] and v["created_at"] < since
            ]  # fmt: skip
            if earlier:
                target = max(earlier, key=lambda v: v["promoted_at"])["version"]
                memory.bank.activate_retriever(target)
            else:
                target = None
                memory.bank.deactivate_retriever(namespace)
            report.rolled_back[namespace] = target
        if retrain is not None:
            report.retrained[namespace] = retrain(namespace)
    return report


def retrain_with(memory: Memory) -> Retrain:
    """The existing training path (retriever.job.run), in this process (it imports torch)."""
    from retriever.job import run

    def retrain(namespace: str) -> dict[str, Any]:
        settings = memory.settings
        return run(memory.bank, namespace, settings.checkpoint_dir, settings.keep_checkpoints,
                   encode=memory.encoder.encode)  # fmt: skip

    return retrain
