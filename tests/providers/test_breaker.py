"""Circuit breaker: transitions, once-only callbacks, shared state, and a sandbox failure."""

from __future__ import annotations

import time
from typing import Any

import fakeredis
import pytest
import redis

from pipeline.matching import TrackQuery
from providers.breaker import (
    HEALTH_STATUS,
    BreakerConfig,
    BreakerState,
    BreakerStore,
    CircuitBreaker,
    MemoryBreakerStore,
    RedisBreakerStore,
)
from providers.errors import CircuitOpen, TransientError
from providers.sandbox import SandboxHandle

from .conftest import ProviderFactory

Transitions = list[tuple[str, BreakerState, BreakerState]]


def _breaker(store: BreakerStore, events: Transitions) -> CircuitBreaker:
    config = BreakerConfig(failure_threshold=3, cooldown_s=0.2, probe_timeout_s=5)
    return CircuitBreaker("p", config, store=store, on_transition=lambda *a: events.append(a))


@pytest.mark.parametrize("kind", ["memory", "fakeredis"])
def test_full_cycle(kind: str) -> None:
    """closed -> open after N failures -> half_open after cool-down -> closed on success."""
    store: BreakerStore = (
        MemoryBreakerStore() if kind == "memory" else RedisBreakerStore(fakeredis.FakeRedis())
    )
    events: Transitions = []
    b = _breaker(store, events)
    for _ in range(3):
        b.before_call()
        b.record_failure()
    with pytest.raises(CircuitOpen) as info:
        b.before_call()
    assert 0 < info.value.retry_after <= 0.2
    time.sleep(0.25)
    b.before_call()  # the probe
    with pytest.raises(CircuitOpen):
        b.before_call()  # only one probe at a time
    b.record_success()
    b.before_call()
    assert [(o, n) for _, o, n in events] == [
        (BreakerState.CLOSED, BreakerState.OPEN),
        (BreakerState.OPEN, BreakerState.HALF_OPEN),
        (BreakerState.HALF_OPEN, BreakerState.CLOSED),
    ]
    assert HEALTH_STATUS[BreakerState.HALF_OPEN] == "degraded"


def test_failed_probe_reopens() -> None:
    """A failing half-open probe sends the breaker back to open with a new cool-down."""
    events: Transitions = []
    b = _breaker(MemoryBreakerStore(), events)
    for _ in range(3):
        b.record_failure()
    time.sleep(0.25)
    b.before_call()
    b.record_failure()
    assert b.state is BreakerState.OPEN
    assert events[-1][1:] == (BreakerState.HALF_OPEN, BreakerState.OPEN)


def test_success_resets_consecutive_count() -> None:
    """Failures must be consecutive: a success in between keeps the breaker closed."""
    b = _breaker(MemoryBreakerStore(), [])
    for _ in range(5):
        b.record_failure()
        b.record_failure()
        b.record_success()
    assert b.state is BreakerState.CLOSED


@pytest.mark.redis
def test_real_redis_transition_fires_once(redis_url: str, key_prefix: str) -> None:
    """Two breaker instances sharing real Redis: the transition callback fires exactly once."""
    client = redis.Redis.from_url(redis_url)
    events: Transitions = []
    cfg = BreakerConfig(failure_threshold=2, cooldown_s=30)
    a = CircuitBreaker("p", cfg, store=RedisBreakerStore(client), key_prefix=key_prefix,
                       on_transition=lambda *e: events.append(e))  # fmt: skip
    b = CircuitBreaker("p", cfg, store=RedisBreakerStore(client), key_prefix=key_prefix,
                       on_transition=lambda *e: events.append(e))  # fmt: skip
    a.record_failure()
    b.record_failure()
    a.record_failure()
    with pytest.raises(CircuitOpen):
        b.before_call()
    assert len(events) == 1 and events[0][2] is BreakerState.OPEN
    client.delete(f"{key_prefix}:p")


def test_breaker_against_failing_then_recovering_sandbox(
    sandbox: SandboxHandle, make_provider: ProviderFactory
) -> None:
    """A sandbox provider that goes down opens the breaker; after recovery a probe closes it."""
    events: Transitions = []
    breaker = CircuitBreaker(
        "deezer",
        BreakerConfig(failure_threshold=3, cooldown_s=0.3),
        store=MemoryBreakerStore(),
        on_transition=lambda *e: events.append(e),
    )
    provider = make_provider("deezer", sandbox.env, breaker=breaker)
    t = sandbox.state.catalogue.tracks[1]
    q = TrackQuery(t.base["artist"], t.base["title"])
    sandbox.configure("deezer", down=True)
    try:
        for _ in range(3):
            with pytest.raises(TransientError):
                provider.lookup(q, ["bpm"])
        with pytest.raises(CircuitOpen):
            provider.lookup(q, ["bpm"])
    finally:
        sandbox.configure("deezer", down=False)
    time.sleep(0.35)
    assert provider.lookup(q, ["bpm"]).status == "found"
    assert [n for _, _, n in events] == [
        BreakerState.OPEN,
        BreakerState.HALF_OPEN,
        BreakerState.CLOSED,
    ]


class _CountingStore(MemoryBreakerStore):
    """The in-memory store, counting how often the shared state is read or written."""

    def __init__(self) -> None:
        super().__init__()
        self.updates = 0

    def update(self, key: str, fn: Any) -> Any:
        self.updates += 1
        return super().update(key, fn)


def test_clean_reading_is_trusted_for_the_cache_window_then_reread() -> None:
    """A healthy provider costs one shared-state read per clean_cache_s, not two per call; a
    breaker another process opened is seen once the window has passed; failures always reach
    the shared state."""
    store = _CountingStore()
    cfg = BreakerConfig(failure_threshold=2, cooldown_s=30, clean_cache_s=0.2)
    mine = CircuitBreaker("p", cfg, store=store)
    other = CircuitBreaker("p", cfg, store=store)
    for _ in range(50):
        mine.before_call()
        mine.record_success()
    assert store.updates == 1
    other.record_failure()
    other.record_failure()  # the shared state is now open
    assert store.updates == 3
    mine.before_call()  # still inside the window: trusted, no read
    assert store.updates == 3
    time.sleep(0.25)
    with pytest.raises(CircuitOpen):
        mine.before_call()
    mine.record_failure()
    assert store.updates == 5


def test_clean_cache_zero_reads_every_time() -> None:
    store = _CountingStore()
    b = CircuitBreaker("p", BreakerConfig(clean_cache_s=0), store=store)
    for _ in range(3):
        b.before_call()
        b.record_success()
    assert store.updates == 6
