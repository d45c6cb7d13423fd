"""The caller a request runs as, and the checks every tool, resource and page makes against it."""

from __future__ import annotations

from dataclasses import dataclass

from memento_mcp.auth.tokens import ALL
from memento_mcp.errors import Forbidden

LOCAL_ID = "local"


@dataclass(frozen=True)
class Principal:
    """A token's holder (or `local` on stdio): the namespaces it may use, and how."""

    client_id: str
    namespaces: frozenset[str] | None  # None: every namespace
    read_only: bool = False
    writes_per_minute: int | None = None  # None: unlimited
    labels_per_minute: int | None = None

    @classmethod
    def of(cls, client_id: str, namespaces: list[str], read_only: bool = False,
           writes_per_minute: int | None = None,
           labels_per_minute: int | None = None) -> Principal:  # fmt: skip
        scope = None if ALL in namespaces else frozenset(namespaces)
        return cls(client_id, scope, read_only, writes_per_minute, labels_per_minute)

    def may_read(self, namespace: str) -> bool:
        return self.namespaces is None or namespace in self.namespaces

    def default_namespace(self, server_default: str) -> str:
        """Where a call that names no namespace goes: the server's, if this token may use it,
        else the token's first (in name order), so that no model has to guess one."""
        if self.may_read(server_default) or not self.namespaces:
            return server_default
        return min(self.namespaces)

    def require_read(self, namespace: str) -> None:
        if not self.may_read(namespace):
            raise Forbidden(
                f"this token may not use namespace {namespace!r}; it may use"
                f" {', '.join(sorted(self.namespaces or ()))} (or leave namespace out)"
            )

    def require_writable(self) -> None:
        if self.read_only:
            raise Forbidden(
                f"this token ({self.client_id}) is read-only: it may retrieve and read cases"
                " but not record, store or delete them"
            )

    def require_write(self, namespace: str) -> None:
        self.require_writable()
        self.require_read(namespace)

    @property
    def owns_bank(self) -> bool:
        """The local user (stdio, CLI) may report on anyone's request; a token only on its own."""
        return self.client_id == LOCAL_ID


LOCAL = Principal(LOCAL_ID, None)
"""stdio and the CLI: the one local user, who owns the bank (no namespace limits, no rate limit)."""
