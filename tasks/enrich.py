"""Lookup task: one provider, a small batch of jobs, each recorded in its own transaction.

Retry policy: rate limits and transient errors retry the *remaining* jobs with a countdown (the
wait the provider or our global limiter asked for, else exponential backoff with jitter). When
retries run out, or the provider's circuit is open, or it refuses our credentials, the lookup is
recorded as failed/skipped and the waterfall moves on to the next priority: one bad provider
never stalls a record.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from celery import Task
from celery.utils.log import get_task_logger
from sqlalchemy import text
from sqlalchemy.exc import InterfaceError, OperationalError

from db.engine import session_scope
from pipeline.enrich import LookupInput, LookupOutcome, Next, lookup_inputs, record_outcomes
from pipeline.scraper_providers import SCRAPER_PROVIDERS, ScraperProvider
from providers.base import HttpProvider
from providers.errors import CircuitOpen, ProviderError, RateLimited, TransientError
from tasks.app import app
from tasks.base import db_retry
from tasks.dispatch import dispatch

__all__ = [
    "HEALTH_BY_STATE",
    "LOOKUP_THREADS",
    "LookupBatch",
    "lookup",
    "lookup_pool",
    "provider_instance",
    "record_health",
    "reset_provider_instances",
    "run_lookups",
]

log = get_task_logger(__name__)

MAX_LOOKUP_RETRIES = 4
#: Lookups of one message asked at once (each worker process; 1 = one after the other).
#: bench/pipeline.py, 40 jobs per message: 8 threads took the 50 ms passes from ~49 to ~72
#: tracks/s, but the 10k pass at 0 ms from 105 to 96 tracks/s and worker PSS from 289 to 301 MB
#: (target 300). Real providers' rate limits bind long before more threads would help.
LOOKUP_THREADS = int(os.environ.get("SONGNODES_LOOKUP_THREADS", "4"))
HEALTH_BY_STATE = {"closed": "healthy", "half_open": "degraded", "open": "down"}

_lock = threading.Lock()
_instances: dict[str, Any] = {}
# Lookup thread pools of this process by size, kept across messages (a pool per message started
# and joined its threads every time). Keyed by pid too: a pool is never used across a fork.
_pools: dict[tuple[int, int], ThreadPoolExecutor] = {}


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


def lookup_pool(threads: int) -> ThreadPoolExecutor:
    """This process's pool of ``threads`` lookup threads (created on first use)."""
    key = (os.getpid(), threads)
    with _lock:
        pool = _pools.get(key)
        if pool is None:
            pool = _pools[key] = ThreadPoolExecutor(threads, f"lookup-{threads}")
        return pool


def _countdown(exc: ProviderError, retries: int) -> float:
    wait = getattr(exc, "retry_after", None)
    if wait:
        return float(wait) + random.uniform(0, 0.25)
    return min(300.0, 2.0**retries) * random.uniform(0.5, 1.5)


def _call(client: Any, li: LookupInput) -> Any:
    try:
        return _ask(client, li)
    except (OperationalError, InterfaceError) as exc:
        # Stored replay and scraper providers read PostgreSQL: a restart is a transient error
        # to retry, not an answer to record as failed.
        raise TransientError(
            f"database unavailable: {type(exc).__name__}", provider=li.provider
        ) from exc


def _ask(client: Any, li: LookupInput) -> Any:
    if li.replay_mode == "stored":
        # Replay (issue #5, pipeline/replay.py): re-parse stored responses, zero HTTP.
        from pipeline.replay import stored_lookup

        with session_scope() as session:
            return stored_lookup(session, li)
    if isinstance(client, ScraperProvider):
        with session_scope() as session:
            return client.lookup(session, li.query, li.fields)
    return client.lookup(li.query, li.fields)


def _batched(client: Any, inputs: Sequence[LookupInput]) -> AbstractContextManager[object]:
    """The provider's batch requests for the live lookups of a message (``HttpProvider.batched``,
    which also decides whether there is anything to batch; stored replay and scraper providers
    have none)."""
    live = [li for li in inputs if li.replay_mode != "stored"]
    if not isinstance(client, HttpProvider):
        return nullcontext()
    return client.batched([li.query for li in live], sorted({f for li in live for f in li.fields}))


def _record(outcomes: list[LookupOutcome], attempts: int) -> Next:
    """Record a batch in ONE transaction with a handful of statements (``record_outcomes``).

    If the batch write fails (a row PostgreSQL refuses), it is rolled back to a savepoint and
    the jobs are recorded one by one, each in its own savepoint, so one bad row cannot lose the
    others; a job whose own write fails is recorded as failed, so the record still moves on.
    """
    with session_scope() as session:
        try:
            with session.begin_nested():
                return record_outcomes(session, outcomes, attempts)
        except (OperationalError, InterfaceError):
            raise  # the database is away, not a bad row: the caller retries the whole batch
        except Exception:
            log.exception("batch record of %d lookups failed; recording one by one", len(outcomes))
        nxt = Next()
        for o in outcomes:
            try:
                with session.begin_nested():
                    nxt.extend(record_outcomes(session, [o], attempts))
            except (OperationalError, InterfaceError):
                raise
            except Exception as exc:
                log.exception("recording %s for job %s failed", o.li.provider, o.li.job_id)
                with session.begin_nested():
                    failed = LookupOutcome(
                        o.li, error=f"internal error while recording: {type(exc).__name__}: {exc}"
                    )
                    nxt.extend(record_outcomes(session, [failed], attempts))
        return nxt


@dataclass
class LookupBatch:
    """What asking a provider about a message's jobs gave: outcomes to record, and the jobs to
    retry later (with the first error that asked for it)."""

    outcomes: list[LookupOutcome] = field(default_factory=list)
    retry_ids: list[str] = field(default_factory=list)
    retry_error: ProviderError | None = None


def run_lookups(
    call: Callable[[LookupInput], Any],
    inputs: Sequence[LookupInput],
    *,
    attempts: int,
    can_retry: bool,
    threads: int = LOOKUP_THREADS,
) -> LookupBatch:
    """Ask for every input, up to ``threads`` at once; outcomes come back in input order.

    A lookup is I/O: a message's lookups waiting one after the other left the worker process
    idle most of the time (a py-spy profile of a bench worker: ~80% waiting on sockets). The
    global rate limit and the breaker still see every request. Once one lookup is rate limited
    or fails transiently (and the task may retry), no further lookup starts; those not started
    and the failed one are retried together, those that finished are recorded.
    """
    stop = threading.Event()

    def one(li: LookupInput) -> LookupOutcome | ProviderError | None:
        if stop.is_set():
            return None  # not started: retried with the failed one
        started = time.monotonic()
        try:
            result = call(li)
        except (RateLimited, TransientError) as exc:
            if can_retry:
                stop.set()  # the provider asked us to slow down: start nothing more
                return exc
            return LookupOutcome(
                li,
                error=f"gave up after {attempts} attempts: {type(exc).__name__}: {exc}",
                responses=exc.responses,
            )
        except CircuitOpen as exc:
            return LookupOutcome(li, error=f"skipped: circuit open ({exc})", status="skipped")
        except ProviderError as exc:  # auth, malformed response, unexpected 4xx: not retryable
            return LookupOutcome(li, error=f"{type(exc).__name__}: {exc}", responses=exc.responses)
        except Exception as exc:  # a bug in one provider must not stall the record
            log.exception("provider %s crashed on job %s", li.provider, li.job_id)
            return LookupOutcome(li, error=f"internal error: {type(exc).__name__}: {exc}")
        return LookupOutcome(li, result=result, latency_ms=int((time.monotonic() - started) * 1000))

    if threads <= 1 or len(inputs) <= 1:
        answers = [one(li) for li in inputs]
    else:
        answers = list(lookup_pool(threads).map(one, inputs))
    batch = LookupBatch()
    for li, answer in zip(inputs, answers, strict=True):
        if isinstance(answer, LookupOutcome):
            batch.outcomes.append(answer)
            continue
        batch.retry_ids.append(li.job_id)
        if batch.retry_error is None and answer is not None:
            batch.retry_error = answer
    return batch


#: A lookup being asked is leased for this long, renewed every third of it while the task
#: runs: a duplicate message skips it meanwhile, a redelivery of the same message (same task
#: id) takes the lease over, and if the worker dies the lease runs out within this time and the
#: sweeper sends the lookup again (an expired lease is the sign of lost work).
LEASE_S = float(os.environ.get("SONGNODES_LOOKUP_LEASE_S", "30"))


class _LeaseHeartbeat:
    """Renews ``holder``'s leases every ``LEASE_S / 3`` from a thread while the lookups run.

    A thread, not a Celery timer: the task blocks in provider calls. A renewal that fails (the
    database is away) is skipped; the worst case is a lease running out and a duplicate ask.
    """

    def __init__(self, job_ids: list[str], provider: str, holder: str) -> None:
        self.args = (job_ids, provider, holder)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-heartbeat", daemon=True)

    def _run(self) -> None:
        from pipeline.recovery import renew_leases

        while not self._stop.wait(LEASE_S / 3):
            try:
                with session_scope() as session:
                    renew_leases(session, *self.args, LEASE_S)
            except Exception:
                log.warning("lease renewal failed", exc_info=True)

    def __enter__(self) -> _LeaseHeartbeat:
        if self.args[0]:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)


def _leased_inputs(job_ids: list[str], provider: str, holder: str) -> list[LookupInput]:
    from pipeline.recovery import lease_lookups

    with session_scope() as session:
        # A job whose lookup is already answered (a redelivered message) yields None; one that
        # another message is asking right now is not leased to this one.
        leased = lease_lookups(session, job_ids, provider, holder, LEASE_S)
        return lookup_inputs(session, [j for j in job_ids if j in leased], provider)


def _release(job_ids: list[str], provider: str, holder: str, seconds: float) -> None:
    from pipeline.recovery import release_lookups

    with session_scope() as session:
        release_lookups(session, job_ids, provider, holder, seconds)


@app.task(bind=True, name="tasks.enrich.lookup", max_retries=MAX_LOOKUP_RETRIES)
def lookup(self: Task, provider: str, job_ids: list[str]) -> dict[str, int]:
    """Ask ``provider`` about each job; record answers; plan next rounds or merges.

    Database steps retry in process (``db_retry``) while PostgreSQL restarts: before asking,
    nothing is lost by waiting; after asking, the answers are held in memory until they are
    recorded, so a provider is not asked (and paid) twice for a database restart (issue 20).
    """
    client = db_retry(provider_instance, provider)
    holder = str(self.request.id or f"local-{os.getpid()}")
    inputs = db_retry(_leased_inputs, [str(j) for j in job_ids], provider, holder)
    attempts = self.request.retries + 1
    with _LeaseHeartbeat([li.job_id for li in inputs], provider, holder), _batched(client, inputs):
        batch = run_lookups(
            lambda li: _call(client, li),
            inputs,
            attempts=attempts,
            can_retry=self.request.retries < MAX_LOOKUP_RETRIES,
        )
    dispatch(db_retry(_record, batch.outcomes, attempts))
    if batch.retry_ids:
        error = batch.retry_error
        assert error is not None  # a job is only left for retry because of an error
        countdown = _countdown(error, self.request.retries)
        # Hold the lease through the countdown (the retry keeps this task id); if the retry
        # message is lost, the lease runs out and the sweeper sends the lookup again.
        db_retry(_release, batch.retry_ids, provider, holder, countdown + 30)
        raise self.retry(
            args=(provider, batch.retry_ids),
            countdown=countdown,
            exc=error,
        ) from error
    return {"looked_up": sum(1 for o in batch.outcomes if o.error is None)}
