"""Fixtures for the provider tests: Redis (real, skipped or required), the sandbox, factories."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from providers.base import HttpProvider, RetryPolicy
from providers.breaker import BreakerConfig, CircuitBreaker, MemoryBreakerStore
from providers.ratelimit import RateLimitConfig, RateLimiter
from providers.registry import _entry_points
from providers.sandbox import SandboxHandle, start_in_thread
from providers.settings import SETTINGS_CLASSES, ProviderSettings

REDIS_URL = os.environ.get("SONGNODES_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

ProviderFactory = Callable[..., HttpProvider]


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A reachable Redis URL; skip (or fail with SONGNODES_REQUIRE_SERVICES=1) otherwise."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        reason = f"Redis not reachable at {REDIS_URL}: {exc}"
        if os.environ.get("SONGNODES_REQUIRE_SERVICES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return REDIS_URL


@pytest.fixture
def key_prefix() -> str:
    """A unique Redis key prefix for one test."""
    return f"songnodes-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxHandle]:
    """One sandbox for the session; tests that change knobs restore them."""
    handle = start_in_thread()
    yield handle
    handle.stop()


def settings_from_env(name: str, env: dict[str, str], **extra: Any) -> ProviderSettings:
    """Build provider settings from an env mapping without touching os.environ."""
    prefix = f"SONGNODES_{name.upper()}_"
    values: dict[str, Any] = {
        k.removeprefix(prefix).lower(): v for k, v in env.items() if k.startswith(prefix)
    }
    values.update(extra)
    return SETTINGS_CLASSES[name](**values)


@pytest.fixture
def make_provider() -> Iterator[ProviderFactory]:
    """Build a provider with an isolated breaker, no rate limit and instant retries."""
    built: list[HttpProvider] = []

    def factory(
        name: str,
        env: dict[str, str],
        *,
        breaker: CircuitBreaker | None = None,
        rate: RateLimitConfig | None = None,
        sleeps: list[float] | None = None,
        **settings: Any,
    ) -> HttpProvider:
        cls = _entry_points()[name].load()
        record = sleeps if sleeps is not None else []
        provider: HttpProvider = cls(
            settings_from_env(name, env, **settings),
            breaker=breaker or CircuitBreaker(name, BreakerConfig(), store=MemoryBreakerStore()),
            limiter=RateLimiter(name, rate or RateLimitConfig()),
            retry=RetryPolicy(),
            sleep=record.append,
        )
        built.append(provider)
        return provider

    yield factory
    for provider in built:
        provider.close()
