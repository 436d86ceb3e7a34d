"""Child-process body for the cross-process rate-limit test (importable under spawn)."""

from __future__ import annotations

import time

from providers.ratelimit import RateLimitConfig, RateLimiter, make_storage


def hammer(redis_url: str, namespace: str, per_second: float, seconds: float) -> list[float]:
    """Acquire slots for ``seconds``; return the wall-clock time of each granted slot."""
    limiter = RateLimiter(
        "mp-test",
        RateLimitConfig(per_second=per_second),
        storage=make_storage(redis_url),
        namespace=namespace,
        max_wait=5.0,
    )
    granted: list[float] = []
    end = time.time() + seconds
    while time.time() < end:
        limiter.acquire()
        granted.append(time.time())
    return granted
