"""Checks on what tools and files hand us, shared by every write and read path: each failure
is an InvalidInput that says what to fix, raised before anything is written."""

from __future__ import annotations

import math

from memento_mcp.errors import InvalidInput

MAX_NAMESPACE = 128


def text(name: str, value: str | None, max_bytes: int, required: bool = True) -> str:
    if value is None or not value.strip():
        if required:
            raise InvalidInput(f"{name} must be non-empty text")
        return value or ""
    size = len(value.encode("utf-8"))
    if size > max_bytes:
        raise InvalidInput(
            f"{name} is {size} bytes; the limit is {max_bytes} bytes"
            " per field: shorten it or store the long part elsewhere and reference it"
        )
    return value


def namespace(value: str | None, default: str) -> str:
    value = value or default
    if len(value) > MAX_NAMESPACE:
        raise InvalidInput(f"namespace must be at most {MAX_NAMESPACE} characters")
    return value


def reward(value: float | None, success: bool | None) -> float:
    if value is None and success is None:
        raise InvalidInput("give the outcome as reward (0..1) or success (true/false)")
    if value is not None and success is not None and value != float(success):
        raise InvalidInput("reward and success disagree; give one of them")
    result = float(value) if value is not None else float(bool(success))
    if math.isnan(result) or not 0.0 <= result <= 1.0:
        raise InvalidInput(f"reward must be within [0, 1], got {value}")
    return result
