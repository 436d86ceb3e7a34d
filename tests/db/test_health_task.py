"""``tasks.maintenance.check_provider_health`` run against a real breaker in each state.

The task used to call ``breaker.state()`` although ``state`` is a property, so every run raised
``TypeError: 'BreakerState' object is not callable`` and no test ran it. Here the task runs as
Celery runs it (``apply``: the task's own code path, in this process) against the providers'
own ``CircuitBreaker`` objects, driven through their public API into closed, open and half-open,
and the registry rows are read back from PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from providers.breaker import BreakerConfig, BreakerState, CircuitBreaker
from providers.errors import CircuitOpen


@pytest.fixture
def breakers(database_url_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Breakers in this process's memory store (no REDIS_URL): real breakers, private state."""
    from tasks.enrich import reset_provider_instances

    monkeypatch.delenv("REDIS_URL", raising=False)
    reset_provider_instances()
    try:
        yield
    finally:
        from tasks.enrich import provider_instance

        for name in ("tidal", "deezer", "spotify"):
            provider_instance(name).breaker.reset()
        reset_provider_instances()


def _breaker(name: str) -> CircuitBreaker:
    from tasks.enrich import provider_instance

    breaker = provider_instance(name).breaker
    assert isinstance(breaker, CircuitBreaker)
    return breaker


def _health(engine: Engine, name: str) -> tuple[str, object]:
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT health_status, last_health_check FROM enrichment_providers "
                "WHERE provider_name = :p"
            ),
            {"p": name},
        ).one()
    return row.health_status, row.last_health_check


def test_health_task_reports_every_breaker_state(breakers: None, engine: Engine) -> None:
    """closed -> healthy, open -> down, half_open -> degraded, in the task's result and in
    ``enrichment_providers``; the task itself does not fail."""
    from tasks.maintenance import check_provider_health

    closed, opened, probing = _breaker("spotify"), _breaker("tidal"), _breaker("deezer")
    closed.reset()
    for b in (opened, probing):
        b.reset()
        for _ in range(b.config.failure_threshold):
            b.record_failure()
    # Half-open: the cool-down has passed and one probe is let through (and has not reported).
    probing.config = BreakerConfig(cooldown_s=0.0, probe_timeout_s=300.0)
    probing.before_call()
    assert (closed.state, opened.state, probing.state) == (
        BreakerState.CLOSED,
        BreakerState.OPEN,
        BreakerState.HALF_OPEN,
    )
    with pytest.raises(CircuitOpen):
        opened.before_call()  # really open: a call is refused

    result = check_provider_health.apply()
    assert result.successful(), result.traceback
    states = result.get()
    assert states["spotify"] == "healthy"
    assert states["tidal"] == "down"
    assert states["deezer"] == "degraded"
    assert _health(engine, "spotify")[0] == "healthy"
    assert _health(engine, "tidal")[0] == "down"
    assert _health(engine, "deezer")[0] == "degraded"
    assert _health(engine, "tidal")[1] is not None

    # And back: a closed breaker is reported healthy again on the next run.
    opened.reset()
    assert check_provider_health.apply().get()["tidal"] == "healthy"
    assert _health(engine, "tidal")[0] == "healthy"
