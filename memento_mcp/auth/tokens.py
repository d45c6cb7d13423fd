"""Tokens as they are stored: a name, the SHA-256 of the secret, and what the token may do.

A token is 32 random bytes (256 bits), so a fast hash is enough at rest: nobody can guess a
preimage, and hashing on every request stays cheap (a slow KDF such as scrypt protects
low-entropy passwords, which these are not). The secret is shown once, by `memento-mcp token
add`; only its hash is written, to `<home>/tokens.json` (mode 0600) or, by hand, to config.toml.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field, TypeAdapter, field_validator

from memento_mcp.errors import ConfigError, InvalidInput

PREFIX = "mmt_"
"""Every token starts with this, so secret scanners and people can tell what leaked."""
ALL = "*"
"""In `namespaces`: every namespace, present and future."""
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
RESERVED = {"local", "anonymous", "auth_token"}
"""Principal names the server uses itself (stdio, tokenless loopback HTTP, MEMENTO_AUTH_TOKEN)."""


def new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class TokenEntry(BaseModel):
    """One token: in `[[tokens]]` of config.toml or in the tokens file."""

    name: str = Field(description="The client id outcomes and cases are recorded under")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 (hex) of the secret")
    namespaces: list[str] = Field(
        default_factory=lambda: [ALL], min_length=1, description="May read and write these; * = all"
    )
    read_only: bool = Field(False, description="May read its namespaces but change nothing")
    writes_per_minute: int | None = Field(None, ge=1, description="Overrides the server default")
    labels_per_minute: int | None = Field(None, ge=1, description="Overrides the server default")
    created_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError("a token name is 1-64 letters, digits or _.@- (starting alphanumeric)")
        return value


_ENTRIES = TypeAdapter(list[TokenEntry])


class TokenFile:
    """`<home>/tokens.json`: the tokens `memento-mcp token add` made (hashes only)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> list[TokenEntry]:
        if not self.path.exists():
            return []
        try:
            return _ENTRIES.validate_json(self.path.read_bytes())
        except ValueError as exc:
            raise ConfigError(f"the tokens file {self.path} is not valid: {exc}") from exc

    def save(self, entries: list[TokenEntry]) -> None:
        """Write atomically, readable by the owner only."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump([entry.model_dump() for entry in entries], handle, indent=2)
        os.replace(tmp, self.path)

    def add(
        self,
        name: str,
        namespaces: list[str],
        read_only: bool = False,
        writes_per_minute: int | None = None,
        labels_per_minute: int | None = None,
        taken: set[str] | None = None,
    ) -> tuple[TokenEntry, str]:
        """A new token; returns its entry and the secret (shown once, never stored)."""
        entries = self.load()
        if name in RESERVED or name in {e.name for e in entries} | (taken or set()):
            raise InvalidInput(f"a token named {name!r} already exists (or the name is reserved)")
        secret = new_secret()
        entry = TokenEntry(
            name=name, sha256=digest(secret), namespaces=namespaces, read_only=read_only,
            writes_per_minute=writes_per_minute, labels_per_minute=labels_per_minute,
        )  # fmt: skip
        self.save([*entries, entry])
        return entry, secret

    def revoke(self, name: str) -> TokenEntry:
        entries = self.load()
        kept = [entry for entry in entries if entry.name != name]
        if len(kept) == len(entries):
            names = ", ".join(e.name for e in entries) or "none"
            raise InvalidInput(f"no token named {name!r} in {self.path} (tokens there: {names})")
        self.save(kept)
        return next(entry for entry in entries if entry.name == name)
