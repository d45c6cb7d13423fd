"""Per-client token buckets: a token holder cannot flood the bank with writes or forged labels.

A limit of N per minute refills N/60 each second and holds at most N/6 (ten seconds' worth), so
a steady client at N/min never waits while a burst beyond ten seconds' quota is refused at
once. Buckets live in the server process: replicas behind one bank each allow N.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Literal

from memento_mcp.errors import RateLimited

Kind = Literal["writes", "labels"]
BURST_SECONDS = 10.0


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, Kind], tuple[float, float]] = {}  # level, at

    def take(self, client_id: str, kind: Kind, per_minute: int | None) -> None:
        """Spend one unit of `client_id`'s `kind` quota, or raise RateLimited (nothing spent)."""
        if not per_minute:
            return
        rate = per_minute / 60.0
        capacity = max(1.0, rate * BURST_SECONDS)
        with self._lock:
            now = self._clock()
            level, at = self._buckets.get((client_id, kind), (capacity, now))
            level = min(capacity, level + (now - at) * rate)
            if level < 1.0:
                wait = (1.0 - level) / rate
                self._buckets[(client_id, kind)] = (level, now)
                raise RateLimited(
                    f"rate limit: this token ({client_id}) may make {per_minute} {kind} per"
                    f" minute and has used them; retry in {wait:.1f} s. Nothing was changed.",
                    retry_after_s=wait,
                )
            self._buckets[(client_id, kind)] = (level - 1.0, now)
