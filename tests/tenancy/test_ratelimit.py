"""Per-client token buckets, on a clock the test moves (no sleeping, no timing thresholds)."""

from __future__ import annotations

import pytest

from memento_mcp.auth.ratelimit import RateLimiter
from memento_mcp.errors import RateLimited
from memento_mcp.settings import Settings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_of_ten_seconds_quota_then_a_429_style_error_with_the_wait() -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    for _ in range(10):  # 60/min: ten seconds' worth at once
        limiter.take("alice", "labels", 60)
    with pytest.raises(RateLimited, match=r"60 labels per minute.*retry in 1\.0 s") as refused:
        limiter.take("alice", "labels", 60)
    assert refused.value.retry_after_s == pytest.approx(1.0)
    limiter.take("bob", "labels", 60)  # per client
    limiter.take("alice", "writes", 60)  # per kind
    clock.now += 1.0
    limiter.take("alice", "labels", 60)  # refilled one
    with pytest.raises(RateLimited):
        limiter.take("alice", "labels", 60)


def test_a_steady_client_at_its_rate_is_never_refused() -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    for _ in range(1000):
        limiter.take("steady", "writes", 120)
        clock.now += 0.5


def test_no_limit_means_none() -> None:
    limiter = RateLimiter(Clock())
    for _ in range(10_000):
        limiter.take("local", "labels", None)


def test_the_default_admits_the_load_bench() -> None:
    # bench/load.py: 8 clients, up to ~160 calls/s, a fifth of them record_outcome (one label
    # each), all as one client: ~32 labels/s, and bursts well under ten seconds' quota.
    clock = Clock()
    limiter = RateLimiter(clock)
    settings = Settings()
    for _ in range(60 * 40):  # a minute at 40 labels/s, above the bench's peak
        limiter.take("anonymous", "labels", settings.labels_per_minute)
        clock.now += 1 / 40
