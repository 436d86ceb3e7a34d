"""A circuit breaker per provider whose state is shared by all workers through Redis.

closed --N consecutive failures--> open --cool-down elapsed--> half_open (one probe let through)
half_open --probe succeeds--> closed;  half_open --probe fails--> open (cool-down restarts).

Every change is a read-modify-write under Redis ``WATCH``/``MULTI`` (optimistic transaction), so
exactly one process performs each transition and ``on_transition(provider, old, new)`` fires once.
We use WATCH rather than a Lua script so the same pure transition functions serve the Redis and
the in-memory store (and fakeredis needs no Lua runtime). Without ``REDIS_URL`` the state lives
in process memory.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, cast

import redis

from providers.errors import CircuitOpen, TransientError

__all__ = [
    "HEALTH_STATUS",
    "BreakerConfig",
    "BreakerState",
    "BreakerStore",
    "CircuitBreaker",
    "MemoryBreakerStore",
    "NoBreaker",
    "RedisBreakerStore",
    "TransitionCallback",
]

logger = logging.getLogger("songnodes.providers.breaker")


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


# How the pipeline shows each state in enrichment_providers.health_status.
HEALTH_STATUS: dict[BreakerState, str] = {
    BreakerState.CLOSED: "healthy",
    BreakerState.OPEN: "down",
    BreakerState.HALF_OPEN: "degraded",
}

TransitionCallback = Callable[[str, BreakerState, BreakerState], None]
State = dict[str, str]
Update = Callable[[State, float], tuple[State, object]]


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    failure_threshold: int = 5
    cooldown_s: float = 30.0
    # If the half-open probe never reports back (worker killed), let another probe through.
    probe_timeout_s: float = 30.0
    # After reading "closed, no failures", this process trusts that reading for this long:
    # before_call and record_success then skip their Redis round trips (two per provider call,
    # ~12% of a worker's time in bench/pipeline). Cost: another process's open transition is
    # seen up to this much later, and a success inside the window does not reset failures
    # other processes recorded meanwhile. Failures always go straight to Redis. 0 disables it.
    clean_cache_s: float = 1.0


class BreakerStore(Protocol):
    def update(self, key: str, fn: Update) -> tuple[State, State, object]: ...


class MemoryBreakerStore:
    """Process-local store (a lock makes each update atomic across threads)."""

    def __init__(self) -> None:
        self._data: dict[str, State] = {}
        self._lock = threading.Lock()

    def update(self, key: str, fn: Update) -> tuple[State, State, object]:
        with self._lock:
            old = dict(self._data.get(key, {}))
            new, out = fn(old, time.time())
            self._data[key] = new
            return old, new, out


class RedisBreakerStore:
    """State in a Redis hash, updated with WATCH/MULTI and retried on conflict."""

    ttl_s = 7 * 24 * 3600

    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    def update(self, key: str, fn: Update) -> tuple[State, State, object]:
        try:
            # Fast path, one round trip: most calls (a closed breaker, a success on a closed
            # breaker) change nothing. HGETALL is an atomic snapshot, so deciding "no change"
            # from it is as correct as deciding it under WATCH; only a change needs the
            # optimistic transaction below (three more round trips).
            old = self._read(self._client, key)
            new, out = fn(dict(old), time.time())
            if new == old:
                return old, new, out
            with self._client.pipeline() as pipe:
                while True:
                    try:
                        pipe.watch(key)
                        old = self._read(pipe, key)
                        new, out = fn(dict(old), time.time())
                        if new != old:
                            pipe.multi()
                            pipe.delete(key)
                            if new:
                                pipe.hset(key, mapping=new)
                                pipe.expire(key, self.ttl_s)
                            pipe.execute()
                        else:
                            pipe.unwatch()
                        return old, new, out
                    except redis.WatchError:
                        continue  # someone else changed it: re-read and recompute
        except redis.RedisError as exc:
            raise TransientError(f"breaker storage unavailable: {exc}") from exc

    @staticmethod
    def _read(client: redis.Redis | redis.client.Pipeline, key: str) -> State:
        raw = cast(dict[bytes, bytes], client.hgetall(key))
        return {_s(k): _s(v) for k, v in raw.items()}


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _state(s: State) -> BreakerState:
    return BreakerState(s.get("state", BreakerState.CLOSED.value))


def _open(now: float) -> State:
    return {"state": BreakerState.OPEN.value, "failures": "0", "opened_at": repr(now)}


class CircuitBreaker:
    """Breaker for one provider. Use ``before_call`` then ``record_success``/``record_failure``."""

    def __init__(
        self,
        provider: str,
        config: BreakerConfig | None = None,
        *,
        store: BreakerStore | None = None,
        on_transition: TransitionCallback | None = None,
        key_prefix: str = "songnodes:breaker",
    ) -> None:
        self.provider = provider
        self.config = config or BreakerConfig()
        self._store = store or default_store()
        self._on_transition = on_transition
        self._key = f"{key_prefix}:{provider}"
        self._clean_until = 0.0  # time.monotonic() until which "closed, 0 failures" is trusted

    def _trust_if_clean(self, state: State) -> None:
        if _state(state) is BreakerState.CLOSED and int(state.get("failures", "0")) == 0:
            self._clean_until = time.monotonic() + self.config.clean_cache_s
        else:
            self._clean_until = 0.0

    def _trusted_clean(self) -> bool:
        return time.monotonic() < self._clean_until

    # --- transitions (pure functions of the stored state and the time) ------------------------
    def _allow(self, s: State, now: float) -> tuple[State, object]:
        state = _state(s)
        cfg = self.config
        if state is BreakerState.CLOSED:
            return s, 0.0
        if state is BreakerState.OPEN:
            reopen_at = float(s.get("opened_at", "0")) + cfg.cooldown_s
            if now < reopen_at:
                return s, reopen_at - now
            return {
                "state": BreakerState.HALF_OPEN.value,
                "probe_until": repr(now + cfg.probe_timeout_s),
            }, 0.0
        probe_until = float(s.get("probe_until", "0"))
        if now < probe_until:
            return s, probe_until - now  # one probe is already in flight
        return {**s, "probe_until": repr(now + cfg.probe_timeout_s)}, 0.0

    def _success(self, s: State, now: float) -> tuple[State, object]:
        if _state(s) is BreakerState.OPEN:
            # A call admitted before the breaker opened finished late; it proves nothing.
            return s, None
        return {}, None

    def _failure(self, s: State, now: float) -> tuple[State, object]:
        state = _state(s)
        if state is BreakerState.HALF_OPEN:
            return _open(now), None
        if state is BreakerState.OPEN:
            return s, None
        failures = int(s.get("failures", "0")) + 1
        if failures >= self.config.failure_threshold:
            return _open(now), None
        return {"state": BreakerState.CLOSED.value, "failures": str(failures)}, None

    # --- public API ------------------------------------------------------------------------------
    def before_call(self) -> None:
        """Raise ``CircuitOpen`` unless a call may go through now."""
        if self._trusted_clean():
            return
        old, new, wait = self._store.update(self._key, self._allow)
        self._notify(old, new)
        self._trust_if_clean(new)
        assert isinstance(wait, float)
        if wait > 0:
            raise CircuitOpen(
                f"circuit {_state(new).value}", retry_after=wait, provider=self.provider
            )

    def record_success(self) -> None:
        if self._trusted_clean():
            return  # nothing to reset as far as this process knows (see clean_cache_s)
        old, new, _ = self._store.update(self._key, self._success)
        self._notify(old, new)
        self._trust_if_clean(new)

    def record_failure(self) -> None:
        self._clean_until = 0.0
        old, new, _ = self._store.update(self._key, self._failure)
        self._notify(old, new)

    @property
    def state(self) -> BreakerState:
        old, _, _ = self._store.update(self._key, lambda s, now: (s, None))
        return _state(old)

    def reset(self) -> None:
        self._clean_until = 0.0
        old, new, _ = self._store.update(self._key, lambda s, now: ({}, None))
        self._notify(old, new)

    def _notify(self, old: State, new: State) -> None:
        before, after = _state(old), _state(new)
        if before is after:
            return
        logger.warning(
            "circuit_transition",
            extra={"provider": self.provider, "from": before.value, "to": after.value},
        )
        if self._on_transition is not None:
            try:
                self._on_transition(self.provider, before, after)
            except Exception:  # a broken callback must not break lookups
                logger.exception("on_transition callback failed", extra={"provider": self.provider})


_default_stores: dict[str, BreakerStore] = {}
_memory_store = MemoryBreakerStore()


def default_store(redis_url: str | None = None) -> BreakerStore:
    """Redis store at ``redis_url`` (default ``REDIS_URL``), else the process memory store."""
    url = redis_url if redis_url is not None else os.environ.get("REDIS_URL")
    if not url:
        return _memory_store
    if url not in _default_stores:
        _default_stores[url] = RedisBreakerStore(redis.Redis.from_url(url))
    return _default_stores[url]


class NoBreaker:
    """A breaker that never opens, for a client whose answers say nothing about the provider's
    health (stored replay and what-if answer from stored exchanges): always closed, records
    nothing, shares nothing."""

    state = BreakerState.CLOSED

    def before_call(self) -> None:
        return None

    def record_success(self) -> None:
        return None

    def record_failure(self) -> None:
        return None

    def reset(self) -> None:
        return None
