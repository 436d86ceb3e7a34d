"""Lookup task: one provider, a small batch of jobs (``pipeline.lookups.engine`` does the work).

The task leases the lookups, has the engine ask them (journaling each answer as it arrives),
records the batch, dispatches what comes next after commit, and retries the jobs a rate limit
or a transient error left with the engine's countdown. Database steps retry in process
(``db_retry``) while PostgreSQL restarts.

The task keeps its registered name ``tasks.enrich.lookup`` (scrapers and operators use it); the
domain functions it calls are named for what they do (``ask_leased``, ``record_batch``), so no
domain function shares the task's name.
"""

from __future__ import annotations

import os

from celery import Task

from pipeline.lookups.clients import HEALTH_BY_STATE, record_health
from pipeline.lookups.clients import provider_client as provider_instance
from pipeline.lookups.clients import reset_clients as reset_provider_instances
from pipeline.lookups.engine import (
    LOOKUP_THREADS,
    LookupBatch,
    ask_leased,
    is_back_pressure,
    lease,
    lookup_pool,
    record_batch,
    release,
    retry_budget,
    retry_countdown,
    run_lookups,
)
from tasks.app import app
from tasks.base import db_retry, publish_countdown
from tasks.dispatch import dispatch

__all__ = [
    # Kept importable from here (their home is pipeline.lookups): tests and older callers.
    "HEALTH_BY_STATE",
    "LOOKUP_THREADS",
    "MAX_LOOKUP_RETRIES",
    "LookupBatch",
    "lookup",
    "lookup_pool",
    "provider_instance",
    "record_health",
    "reset_provider_instances",
    "run_lookups",
]

MAX_LOOKUP_RETRIES = 4


@app.task(bind=True, name="tasks.enrich.lookup", max_retries=MAX_LOOKUP_RETRIES)
def lookup(self: Task, provider: str, job_ids: list[str], waited: int = 0) -> dict[str, int]:
    """Ask ``provider`` about each job; record answers; plan next rounds or merges.

    ``waited``: retries of this message that were only our own rate limiter's refusals; they
    spend none of the ``MAX_LOOKUP_RETRIES`` budget (``retry_budget``).

    Before asking, nothing is lost by waiting for the database; after asking, the answers are
    held in memory until they are recorded, so a provider is not asked (and paid) twice for a
    database restart (issue 20). Each answer is also journaled as it arrives
    (``pipeline.lookups.journal``): if this worker is killed, the next delivery records the
    journaled answers instead of asking again.
    """
    client = db_retry(provider_instance, provider)
    holder = str(self.request.id or f"local-{os.getpid()}")
    leased = db_retry(lease, [str(j) for j in job_ids], provider, holder)
    attempts, can_retry = retry_budget(self.request.retries, waited, MAX_LOOKUP_RETRIES)
    batch = ask_leased(client, leased, attempts=attempts, can_retry=can_retry)
    dispatch(db_retry(record_batch, batch.outcomes, attempts))
    if batch.retry_ids:
        error = batch.retry_error
        assert error is not None  # a job is only left for retry because of an error
        countdown = publish_countdown(retry_countdown(error, self.request.retries))
        # Hold the lease through the countdown (the retry keeps this task id); if the retry
        # message is lost, the lease runs out and the sweeper sends the lookup again.
        db_retry(release, batch.retry_ids, provider, holder, countdown + 30)
        retry_args = (provider, batch.retry_ids)
        waited += is_back_pressure(error)
        raise self.retry(
            args=retry_args, kwargs={"waited": waited}, countdown=countdown, exc=error,
            max_retries=MAX_LOOKUP_RETRIES + waited,
        ) from error  # fmt: skip
    return {
        "looked_up": sum(1 for o in batch.outcomes if o.error is None),
        "replayed_requests": batch.replayed,  # answered from the reply journal (Flower shows it)
    }
