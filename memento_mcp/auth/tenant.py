"""Memory as one principal may see and change it: the only way tools, pages and solve_task reach it.

Every read is confined to the principal's namespaces in the query itself, so a case of another
tenant is reported exactly like a case that does not exist (same error, same message): case ids
are sequential, and a different answer would let anyone enumerate other tenants' banks. Every
write checks that the token is not read-only, spends from its rate limits, and records the
principal as the outcome's or case's client (provenance).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from memento_mcp.auth.principal import Principal
from memento_mcp.auth.ratelimit import Kind, RateLimiter
from memento_mcp.casebank.feedback import unknown_request
from memento_mcp.memory import Memory
from memento_mcp.models import BankStats, Case, OutcomeReceipt, RetrieveResult


class TenantMemory:
    def __init__(self, memory: Memory, principal: Principal, limiter: RateLimiter) -> None:
        self.memory = memory
        self.principal = principal
        self.limiter = limiter

    @property
    def scope(self) -> Collection[str] | None:
        """The namespaces this caller may use (None: all)."""
        return self.principal.namespaces

    def namespace(self, namespace: str | None, write: bool = False) -> str:
        """The namespace a call goes to, checked: named, or this caller's default."""
        resolved = namespace or self.principal.default_namespace(self.memory.settings.namespace)
        if write:
            self.principal.require_write(resolved)
        else:
            self.principal.require_read(resolved)
        return resolved

    def spend(self, kind: Kind) -> None:
        """One unit of the caller's `writes` or `labels` quota (RateLimited when spent)."""
        principal = self.principal
        per_minute = principal.writes_per_minute if kind == "writes" else principal.labels_per_minute
        self.limiter.take(principal.client_id, kind, per_minute)

    # -- reads --------------------------------------------------------------------------------
    def retrieve(
        self,
        query: str,
        k: int = 4,
        namespace: str | None = None,
        min_score: float | None = None,
        source: str = "retrieve_cases",
    ) -> RetrieveResult:
        return self.memory.retrieve(
            query, k=k, namespace=self.namespace(namespace), min_score=min_score, source=source,
            client_id=self.principal.client_id,
        )  # fmt: skip

    def get_case(self, case_id: int) -> Case:
        return self.memory.get_case(case_id, self.scope)

    def stats(self) -> BankStats:
        return self.memory.stats(self.scope)

    # -- writes -------------------------------------------------------------------------------
    def record_outcome(
        self, *, request_id: str | None = None, namespace: str | None = None, **outcome: Any
    ) -> OutcomeReceipt:
        """record_outcome for this caller: only on its own requests, in its own namespaces."""
        self.memory.bank.require_writable()  # first: a read-only bank logged no request to find
        if request_id is not None:
            request = self.memory.bank.get_request(request_id)
            made_by = request["client_id"]
            others = made_by is not None and made_by != self.principal.client_id
            if not self.principal.may_read(request["namespace"]) or (
                others and not self.principal.owns_bank
            ):
                raise unknown_request(request_id)  # as if it did not exist: it is not theirs
            self.principal.require_write(request["namespace"])
            if namespace is not None:
                self.namespace(namespace, write=True)
        else:
            namespace = self.namespace(namespace, write=True)
        stores_case = request_id is None or bool(outcome.get("plan") or outcome.get("answer"))
        self.spend("labels")
        if stores_case:
            self.spend("writes")
        return self.memory.record_outcome(
            request_id=request_id, namespace=namespace, client_id=self.principal.client_id,
            **outcome,
        )  # fmt: skip

    def delete_case(self, case_id: int) -> None:
        self.principal.require_writable()
        self.spend("writes")
        self.memory.delete_case(case_id, self.scope)

    def store_trajectory(self, *, request_id: str, namespace: str | None = None, **run: Any) -> int:
        """solve_task keeps its run as a case of this caller (the request is its own)."""
        self.memory.bank.require_writable()  # first: a read-only bank logged no request to find
        request = self.memory.bank.get_request(request_id)
        self.principal.require_write(namespace or request["namespace"])
        return self.memory.store_trajectory(
            request_id=request_id, namespace=namespace, client_id=self.principal.client_id, **run
        )
