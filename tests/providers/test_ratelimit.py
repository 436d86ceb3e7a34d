"""The global limiter: waits exactly as long as the window says, or raises RateLimited."""

from __future__ import annotations

import multiprocessing
import time
from bisect import bisect_left

import pytest
from limits.storage import MemoryStorage

from providers.errors import RateLimited
from providers.ratelimit import RateLimitConfig, RateLimiter, make_storage

from ._mp_worker import hammer


def test_denied_caller_sleeps_until_window_frees() -> None:
    """Over the limit, the caller sleeps once for the window's reset time (no busy loop)."""
    sleeps: list[float] = []

    def fake_sleep(s: float) -> None:
        sleeps.append(s)
        time.sleep(s)

    limiter = RateLimiter(
        "t", RateLimitConfig(per_second=2), storage=MemoryStorage(), sleep=fake_sleep
    )
    limiter.acquire()
    limiter.acquire()
    limiter.acquire()
    assert len(sleeps) == 1 and 0.5 < sleeps[0] <= 1.01


def test_wait_beyond_max_raises_with_retry_after() -> None:
    """When the wait exceeds max_wait the limiter raises RateLimited(local) with the wait."""
    limiter = RateLimiter(
        "t", RateLimitConfig(per_second=0.25), storage=MemoryStorage(), max_wait=0.5
    )
    limiter.acquire()
    with pytest.raises(RateLimited) as info:
        limiter.acquire()
    assert info.value.local and 3.0 < info.value.retry_after <= 4.01


def test_per_day_item_is_enforced() -> None:
    """The per-day budget refuses the call after N, with a long retry_after."""
    limiter = RateLimiter("t", RateLimitConfig(per_day=2), storage=MemoryStorage())
    limiter.acquire()
    limiter.acquire()
    with pytest.raises(RateLimited) as info:
        limiter.acquire()
    assert info.value.retry_after > 3600


def test_unlimited_never_waits() -> None:
    """No configured limit means acquire returns immediately."""
    limiter = RateLimiter("t", RateLimitConfig(), storage=MemoryStorage())
    assert all(limiter.acquire() == 0.0 for _ in range(100))


@pytest.mark.redis
@pytest.mark.slow
def test_processes_share_one_limit_in_redis(redis_url: str, key_prefix: str) -> None:
    """Four spawned processes sharing 10 req/s in real Redis never exceed it in any 1 s window."""
    rate, seconds = 10, 2.5
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        results = pool.starmap(hammer, [(redis_url, key_prefix, rate, seconds)] * 4)
    times = sorted(t for r in results for t in r)
    # Timestamps are taken just after the grant, so allow 50 ms of scheduling skew.
    worst = max(bisect_left(times, t + 0.95) - i for i, t in enumerate(times))
    assert worst <= rate
    assert len(times) >= rate * seconds * 0.9  # and the limit is actually used
    assert sum(1 for r in results if r) >= 2  # more than one process got slots
    make_storage(redis_url)  # storage factory works for the parent too


def test_granted_rate_keeps_the_safety_margin_and_never_exceeds_the_limit() -> None:
    """bench/sightings compares the limited pass with what the limiter grants: whole requests
    per whole-second window, 3% headroom where it is at least one request (10/s grants 10,
    33/s 33, 34/s 32, 100/s 97)."""
    from providers.ratelimit import granted_per_second

    assert granted_per_second(10) == 10.0
    assert granted_per_second(33) == 33.0
    assert granted_per_second(34) == 32.0
    assert granted_per_second(100) == 97.0
    assert granted_per_second(1) == 1.0
    assert granted_per_second(0.5) == 0.5  # 1 per 2 s
    for rate in (0.8, 1, 2.5, 3, 5, 8, 10, 12.5, 30, 50, 100, 250):
        assert 0 < granted_per_second(rate) <= rate


def test_max_wait_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """``SONGNODES_RATE_LIMIT_MAX_WAIT_S`` bounds every limiter built in the process (a worker
    whose lookups should give their process back rather than sleep): at 0.1 s, a caller that
    would wait ~0.5 s for a 2/s window is refused at once, having slept nothing."""
    from providers.ratelimit import DEFAULT_MAX_WAIT, max_wait_s

    monkeypatch.delenv("SONGNODES_RATE_LIMIT_MAX_WAIT_S", raising=False)
    assert max_wait_s() == DEFAULT_MAX_WAIT
    monkeypatch.setenv("SONGNODES_RATE_LIMIT_MAX_WAIT_S", "0.1")
    sleeps: list[float] = []
    limiter = RateLimiter(
        "t", RateLimitConfig(per_second=2), storage=MemoryStorage(), sleep=sleeps.append
    )
    assert limiter.max_wait == 0.1
    limiter.acquire()
    limiter.acquire()
    with pytest.raises(RateLimited) as info:
        limiter.acquire()
    assert info.value.local and sleeps == [] and 0.1 < info.value.retry_after <= 1.01


@pytest.mark.parametrize("raw", ["soon", "-1", "nan", "inf", "61"])
def test_max_wait_from_the_environment_is_checked(
    monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    """A wrong value is a clear error naming the variable, not a limiter that never waits (a
    negative budget) or sleeps for ever."""
    from providers.ratelimit import max_wait_s

    monkeypatch.setenv("SONGNODES_RATE_LIMIT_MAX_WAIT_S", raw)
    with pytest.raises(ValueError, match="SONGNODES_RATE_LIMIT_MAX_WAIT_S"):
        max_wait_s()
