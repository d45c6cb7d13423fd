"""One exception tree for the whole package, translated to MCP tool errors in one place.

    MementoError
    ├── InvalidInput        bad arguments: reward outside [0, 1], empty or oversize text, bad JSONL
    ├── NotFound            an unknown case_id or request_id
    ├── Conflict            the request was valid but clashes with what is stored (outcome already recorded)
    ├── Forbidden           the caller's token does not allow it (read-only, namespace outside its list)
    ├── RateLimited         the caller's token wrote or labelled too much too fast (HTTP's 429)
    ├── StorageError        the case bank cannot be opened or written (permissions, corruption, lock)
    │   ├── DamagedBank         the bank file is corrupt: check it, restore a backup or an export
    │   └── ReadOnlyBank        the bank file is read-only to us: retrieval works, recording does not
    ├── ConfigError         a setting is missing or wrong (no LLM backend, bad mcpServers file)
    ├── LLMError            the language model failed
    │   ├── LLMTimeout          no reply within the deadline
    │   ├── LLMRateLimited      429 after all retries
    │   └── LLMBadReply         a reply that does not follow the JSON contract, even after a retry
    └── ToolServerError     a child MCP tool server failed to start or crashed

Library code raises these; `server.py` runs with `mask_error_details=True` and turns them into
`ToolError` through `to_tool_error`, so a client sees the message and never a stack trace.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the tree stays free of the framework: importing fastmcp costs ~0.5 s
    from fastmcp.exceptions import ToolError


class MementoError(Exception):
    """Root of every error this package raises on purpose."""


class InvalidInput(MementoError):
    """Raised when an argument is outside what the tool accepts; nothing was changed."""


class NotFound(MementoError):
    """Raised when a case_id or request_id names nothing in this bank."""


class Conflict(MementoError):
    """Raised when a valid request clashes with stored state, e.g. a second outcome for one request."""


class Forbidden(MementoError):
    """Raised when the caller's token may not do this: it is read-only, or the namespace is not its."""


class RateLimited(MementoError):
    """Raised when a token exceeds its writes or labels per minute; the message says when to retry."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class StorageError(MementoError):
    """Raised when the case bank cannot be opened, read or written."""


class DamagedBank(StorageError):
    """Raised when SQLite finds the bank file corrupt (not a database, malformed pages)."""


class ReadOnlyBank(StorageError):
    """Raised when a write (an outcome, a new case) reaches a bank opened read-only."""


class ConfigError(MementoError):
    """Raised when configuration is missing or malformed."""


class LLMError(MementoError):
    """Raised when the language model backend fails."""


class LLMTimeout(LLMError):
    """Raised when the model does not answer within the deadline."""


class LLMRateLimited(LLMError):
    """Raised when the backend keeps answering 429 after the retries are spent."""


class LLMBadReply(LLMError):
    """Raised when a reply does not follow the JSON contract, even after one corrective retry."""


class ToolServerError(MementoError):
    """Raised when a child MCP tool server cannot be started or reached."""


def to_tool_error(error: MementoError) -> ToolError:
    """The single place where library errors become MCP tool errors (their text is shown)."""
    from fastmcp.exceptions import ToolError

    return ToolError(f"{type(error).__name__}: {error}")
