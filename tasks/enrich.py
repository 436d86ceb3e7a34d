"""Lookup task: one provider, a small batch of jobs, each recorded in its own transaction.

Retry policy: rate limits and transient errors retry the *remaining* jobs with a countdown (the
wait the provider or our global limiter asked for, else exponential backoff with jitter). When
retries run out, or the provider's circuit is open, or it refuses our credentials, the lookup is
recorded as failed/skipped and the waterfall moves on to the next priority: one bad provider
never stalls a record.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

from celery import Task
from celery.utils.log import get_task_logger
from sqlalchemy import text

from db.engine import session_scope
from pipeline.enrich import Next, lookup_input, record_failure, record_result
from pipeline.scraper_providers import SCRAPER_PROVIDERS, ScraperProvider
from providers.errors import CircuitOpen, ProviderError, RateLimited, TransientError
from tasks.app import app
from tasks.dispatch import dispatch

__all__ = ["HEALTH_BY_STATE", "lookup", "provider_instance", "record_health"]

log = get_task_logger(__name__)

MAX_LOOKUP_RETRIES = 4
HEALTH_BY_STATE = {"closed": "healthy", "half_open": "degraded", "open": "down"}

_lock = threading.Lock()
_instances: dict[str, Any] = {}


def record_health(provider: str, old: Any, new: Any) -> None:
    """Breaker transition -> ``enrichment_providers.health_status`` and ``last_health_check``."""
    state = str(getattr(new, "value", new))
    with session_scope() as session:
        session.execute(
            text(
                "UPDATE enrichment_providers SET health_status = :h, last_health_check = now() "
                "WHERE provider_name = :p"
            ),
            {"h": HEALTH_BY_STATE.get(state, "degraded"), "p": provider},
        )
    log.warning("provider %s circuit %s -> %s", provider, getattr(old, "value", old), state)


def provider_instance(name: str) -> Any:
    """One client per provider per process, with the limits configured in the database."""
    from providers.ratelimit import RateLimitConfig
    from providers.registry import get_provider

    with _lock:
        if name in _instances:
            return _instances[name]
        if name in SCRAPER_PROVIDERS:
            instance: Any = ScraperProvider(name)
        else:
            with session_scope() as session:
                row = session.execute(
                    text(
                        "SELECT rate_limit_per_second, rate_limit_per_day "
                        "FROM enrichment_providers WHERE provider_name = :p"
                    ),
                    {"p": name},
                ).first()
            limit = RateLimitConfig(
                per_second=float(row[0]) if row and row[0] is not None else None,
                per_day=int(row[1]) if row and row[1] is not None else None,
            )
            instance = get_provider(name, rate_limit=limit, on_transition=record_health)
        _instances[name] = instance
        return instance


def reset_provider_instances() -> None:
    """Forget cached clients (tests and the demo change provider settings between runs)."""
    with _lock:
        _instances.clear()


def _countdown(exc: ProviderError, retries: int) -> float:
    wait = getattr(exc, "retry_after", None)
    if wait:
        return float(wait) + random.uniform(0, 0.25)
    return min(300.0, 2.0**retries) * random.uniform(0.5, 1.5)


@app.task(bind=True, name="tasks.enrich.lookup", max_retries=MAX_LOOKUP_RETRIES)
def lookup(self: Task, provider: str, job_ids: list[str]) -> dict[str, int]:
    """Ask ``provider`` about each job; record answers; plan next rounds or merges."""
    nxt = Next()
    client = provider_instance(provider)
    remaining = list(job_ids)
    done = 0
    while remaining:
        job_id = remaining[0]
        with session_scope() as session:
            li = lookup_input(session, job_id, provider)
        if li is None:  # already answered: a redelivered message
            remaining.pop(0)
            continue
        attempts = self.request.retries + 1
        started = time.monotonic()
        try:
            if li.replay_mode == "stored":
                # Replay (issue #5, pipeline/replay.py): re-parse stored responses, zero HTTP.
                from pipeline.replay import stored_lookup

                with session_scope() as session:
                    result = stored_lookup(session, li)
            elif isinstance(client, ScraperProvider):
                with session_scope() as session:
                    result = client.lookup(session, li.query, li.fields)
            else:
                result = client.lookup(li.query, li.fields)
        except (RateLimited, TransientError) as exc:
            if self.request.retries < MAX_LOOKUP_RETRIES:
                dispatch(nxt)
                raise self.retry(
                    args=(provider, remaining),
                    countdown=_countdown(exc, self.request.retries),
                    exc=exc,
                ) from exc
            reason = f"gave up after {attempts} attempts: {type(exc).__name__}: {exc}"
            with session_scope() as session:
                nxt.extend(
                    record_failure(session, li, reason, responses=exc.responses, attempts=attempts)
                )
        except CircuitOpen as exc:
            with session_scope() as session:
                nxt.extend(
                    record_failure(
                        session,
                        li,
                        f"skipped: circuit open ({exc})",
                        status="skipped",
                        attempts=attempts,
                    )
                )
        except ProviderError as exc:  # auth, malformed response, unexpected 4xx: not retryable
            with session_scope() as session:
                nxt.extend(
                    record_failure(
                        session,
                        li,
                        f"{type(exc).__name__}: {exc}",
                        responses=exc.responses,
                        attempts=attempts,
                    )
                )
        except Exception as exc:  # a bug in one provider must not stall the record
            log.exception("provider %s crashed on job %s", provider, job_id)
            with session_scope() as session:
                nxt.extend(
                    record_failure(
                        session,
                        li,
                        f"internal error: {type(exc).__name__}: {exc}",
                        attempts=attempts,
                    )
                )
        else:
            latency = int((time.monotonic() - started) * 1000)
            with session_scope() as session:
                nxt.extend(
                    record_result(session, li, result, attempts=attempts, latency_ms=latency)
                )
            done += 1
        remaining.pop(0)
    dispatch(nxt)
    return {"looked_up": done}
