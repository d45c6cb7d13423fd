"""No secret in any log line: a logging filter on every handler the server writes through.

The dashboard's documented login, `/?token=<token>`, puts the token in a URL, and uvicorn's
access log prints URLs; a bearer token could reach a log through an exception message. The
filter rewrites each record before any handler formats it: `token=` query values, `Bearer`
credentials and anything shaped like one of our tokens (`mmt_...`) become `[redacted]`.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

REDACTED = "[redacted]"
_PATTERNS = [
    re.compile(r"(?i)(\btoken=)[^&\s\"']+"),
    re.compile(r"(?i)(\bbearer\s+)[^\s\"',]+"),
    re.compile(r"()\bmmt_[A-Za-z0-9_-]{16,}"),
]


def redact(text: str) -> str:
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text


class RedactSecrets(logging.Filter):
    """Rewrites the message and its string arguments (uvicorn's access log passes the URL as an
    argument, so the arguments are redacted in place rather than the formatted line)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's own logging configuration with the filter on each of its handlers."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact"] = {"()": f"{__name__}.RedactSecrets"}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("redact")
    return config


def install() -> None:
    """The filter on every handler configured so far (the root logger's and FastMCP's)."""
    for name in (None, "fastmcp", "mcp"):
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, RedactSecrets) for f in handler.filters):
                handler.addFilter(RedactSecrets())
