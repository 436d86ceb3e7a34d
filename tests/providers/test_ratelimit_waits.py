"""The global rate limiter counts its waits and refusals where ``songnodes metrics`` reads them:
a Redis hash every worker process adds to (real Redis), or this process's memory without one.

Each Redis test uses a database of its own (14, 15; test_metrics uses 13): the hash has one
fixed key, and parallel test processes would otherwise clear each other's."""

from __future__ import annotations

import pytest
import redis as redis_lib
from limits.storage import MemoryStorage

from providers.errors import RateLimited
from providers.ratelimit import WAITS_KEY, RateLimitConfig, RateLimiter, read_waits


def _limiter(max_wait: float) -> tuple[RateLimiter, list[float]]:
    slept: list[float] = []
    limiter = RateLimiter(
        "waitprobe", RateLimitConfig(per_second=1), storage=MemoryStorage(), max_wait=max_wait,
        sleep=slept.append,
    )  # fmt: skip
    return limiter, slept


def test_waits_are_counted_in_redis(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    url = redis_url.rsplit("/", 1)[0] + "/14"
    client = redis_lib.Redis.from_url(url)
    client.delete(WAITS_KEY)
    monkeypatch.setenv("REDIS_URL", url)
    # The memory storage never frees the slot while sleep is a no-op, so give the loop a way out:
    # the first acquire takes the slot, the second waits once, then is refused (budget spent).
    limiter, slept = _limiter(max_wait=1.5)
    try:
        assert limiter.acquire() == 0.0
        with pytest.raises(RateLimited):
            limiter.acquire()
        waits = read_waits(client)
    finally:
        client.delete(WAITS_KEY)
    assert len(slept) == 1
    assert waits["waitprobe:refused"] == 1.0
    assert "waitprobe:waits" not in waits  # the waited-then-refused call counts as a refusal
    assert waits["waitprobe:seconds"] == pytest.approx(slept[0])  # the time it did wait


def test_a_wait_that_gets_its_slot_is_counted(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    url = redis_url.rsplit("/", 1)[0] + "/15"
    client = redis_lib.Redis.from_url(url)
    client.delete(WAITS_KEY)
    monkeypatch.setenv("REDIS_URL", url)
    limiter = RateLimiter(
        "waitprobe2", RateLimitConfig(per_second=1), storage=MemoryStorage(), max_wait=3,
        sleep=time.sleep,
    )  # fmt: skip
    try:
        limiter.acquire()
        waited = limiter.acquire()  # the window frees within a second
        waits = read_waits(client)
    finally:
        client.delete(WAITS_KEY)
    assert waited > 0
    assert waits["waitprobe2:waits"] == 1.0
    assert waits["waitprobe2:seconds"] == pytest.approx(waited)
    assert "waitprobe2:refused" not in waits


def test_without_redis_waits_stay_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    from providers.ratelimit import record_wait

    monkeypatch.delenv("REDIS_URL", raising=False)
    before = read_waits().get("memprobe:waits", 0.0)
    record_wait("memprobe", 0.5)
    record_wait("memprobe", 0.25)
    after = read_waits()
    assert after["memprobe:waits"] == before + 2
    assert after["memprobe:seconds"] >= 0.75
