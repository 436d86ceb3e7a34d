"""Replay tasks: drain ``pipeline_replay_queue`` (beat, every 30 s) and process replay jobs.

``drain_replay_queue`` closes finished requests, then claims queued rows one transaction each
(``FOR UPDATE SKIP LOCKED``: concurrent drains never take the same row), opens their replay runs
and enqueues ``replay_jobs`` chunks on the ``replay`` queue after commit. A bad request is marked
``failed`` with its reason and the drain goes on with the next row.
"""

from __future__ import annotations

from celery.utils.log import get_task_logger
from sqlalchemy.orm import Session

from db.engine import session_scope
from pipeline.lookups.clients import ask
from pipeline.lookups.outcome import LookupInput
from pipeline.replay import (
    ReplayError,
    Started,
    claim_next,
    complete_finished,
    fail_row,
    process_jobs,
    process_live,
    start_replay,
)
from providers.contract import LookupResult
from tasks.app import app
from tasks.base import TRANSIENT_ERRORS

__all__ = ["drain_replay_queue", "live_lookup", "replay_jobs"]

log = get_task_logger(__name__)

JOB_CHUNK = 20  # live replay: small chunks spread provider calls over every worker slot
STORED_CHUNK = 100  # stored replay is database work: bigger batches, fewer statements per job
MAX_ROWS_PER_DRAIN = 50


def live_lookup(session: Session | None, li: LookupInput) -> LookupResult:
    """``force_re_enrichment``: ask the provider again (global limits and breaker apply), with
    the lookup engine's answerer (``pipeline.lookups.clients.ask``)."""
    return ask(li, session)


def _after_commit(started: Started) -> None:
    from tasks.gold import schedule_refresh

    if started.mode == "gold":
        schedule_refresh()
        return
    size = STORED_CHUNK if started.mode == "stored" else JOB_CHUNK
    for start in range(0, len(started.job_ids), size):
        chunk = started.job_ids[start : start + size]
        replay_jobs.apply_async((started.run_id, chunk, started.mode, started.partial))


@app.task(name="tasks.replay.drain_replay_queue", autoretry_for=TRANSIENT_ERRORS, max_retries=3)
def drain_replay_queue(max_rows: int = MAX_ROWS_PER_DRAIN) -> dict[str, int]:
    """Close finished replays; claim and start up to ``max_rows`` queued ones."""
    with session_scope() as session:
        closed = len(complete_finished(session))
    started_n = failed = 0
    for _ in range(max_rows):
        started: Started | None = None
        with session_scope() as session:
            row = claim_next(session)
            if row is None:
                break
            try:
                with session.begin_nested():
                    started = start_replay(session, row)
            except ReplayError as exc:
                fail_row(session, row.id, str(exc))
            except Exception as exc:  # a poison row must not block the queue forever
                log.exception("replay %s could not start", row.id)
                fail_row(session, row.id, f"internal error: {type(exc).__name__}: {exc}")
        if started is None:
            failed += 1
            continue
        started_n += 1
        _after_commit(started)
    if started_n:  # gold-only replays are complete as soon as they started
        with session_scope() as session:
            closed += len(complete_finished(session))
    return {"started": started_n, "failed": failed, "closed": closed}


@app.task(
    name="tasks.replay.replay_jobs",
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=True,
    max_retries=5,
)
def replay_jobs(run_id: str, job_ids: list[str], mode: str, partial: bool = False) -> int:
    """Look up (stored or live) and merge a chunk of jobs; then gold. A stored chunk is one
    transaction; a live one asks providers between short transactions (``process_live``)."""
    from tasks.gold import update_tracks

    if mode == "stored":  # database work only: one transaction for the chunk
        with session_scope() as session:
            results = process_jobs(session, job_ids, None, partial=partial)
    else:  # provider HTTP with no transaction open (pipeline.replay.process_live)
        results = process_live(session_scope, job_ids, live_lookup, partial=partial)
    silver_ids = [r.silver_track_id for r in results if r.silver_track_id and not r.already_merged]
    if silver_ids:
        update_tracks.delay(sorted(set(silver_ids)))
    with session_scope() as session:
        complete_finished(session)
    log.info("replay run %s: %d jobs merged", run_id, len(silver_ids))
    return len(silver_ids)
