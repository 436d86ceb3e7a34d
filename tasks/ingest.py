"""Ingest tasks: what scrapers call.

    from tasks.ingest import ingest_envelope
    ingest_envelope.delay({"kind": "track", "source": "beatport", ...})   # one envelope
    ingest_batch.delay([envelope, envelope, ...])                          # up to ~500

Each call appends to bronze in one transaction (bad envelopes go to quarantine), opens a pipeline
run with today's configuration snapshot, and enqueues enrichment only after commit.
"""

from __future__ import annotations

from typing import Any

from celery.utils.log import get_task_logger
from sqlalchemy import text

from db.engine import session_scope
from pipeline.enrich import Next, create_jobs
from pipeline.ingest import batch_messages, ingest_messages, quarantine_batch
from pipeline.merge import artist_to_silver
from pipeline.runs import finish_run_if_done, start_run
from tasks.app import app
from tasks.base import TRANSIENT_ERRORS
from tasks.dispatch import dispatch

__all__ = ["ingest_batch", "ingest_envelope"]

log = get_task_logger(__name__)


@app.task(
    name="tasks.ingest.ingest_batch",
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=True,
    retry_jitter=True,
    max_retries=10,
)
def ingest_batch(
    messages: Any, triggered_by: str = "scraper", via: str = "task"
) -> dict[str, Any]:
    """Append a batch of envelopes to bronze and start their enrichment.

    Whatever ``messages`` is, the batch ends in bronze/quarantine: each message on its own
    (:func:`pipeline.ingest.ingest_messages`), or, when it is not a list or its processing fails
    for a reason that is not the database being away (that is retried), the whole batch in
    quarantine (``scope = 'batch'``) with a run marked ``failed`` so ``--wait`` stops at once."""
    via = via if via in ("task", "cli", "api") else "task"
    batch = batch_messages(messages)
    if batch is None:
        reason = f"a batch must be a JSON array of messages, got {_json_type(messages)}"
        return _batch_failed(messages, reason, triggered_by, via)
    nxt = Next()
    try:
        with session_scope() as session:
            result = ingest_messages(session, batch, via=via)
            # Every batch gets a run (even one of duplicates) so callers can follow it to the end.
            run_id = start_run(session, "incremental", triggered_by)
            if result.track_ids:
                nxt = create_jobs(session, run_id, result.track_ids)
            for artist_id in result.artist_ids:
                artist_to_silver(session, str(artist_id))
            if not nxt:
                finish_run_if_done(session, run_id)
    except TRANSIENT_ERRORS:
        raise  # the database or broker is away: autoretry, nothing was committed
    except Exception as exc:  # nothing of the batch was committed: keep it whole, with the reason
        reason = f"batch could not be ingested: {type(exc).__name__}: {exc}"[:2000]
        return _batch_failed(batch, reason, triggered_by, via)
    dispatch(nxt)
    summary = result.as_dict() | {"run_id": str(run_id)}
    log.info("ingested batch", extra={"run_id": str(run_id)} | result.as_dict())
    return summary


@app.task(
    name="tasks.ingest.ingest_envelope",
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=True,
    retry_jitter=True,
    max_retries=10,
)
def ingest_envelope(envelope: Any, triggered_by: str = "scraper") -> dict[str, Any]:
    """One envelope (a dict, or its JSON text); any other value is quarantined as the message."""
    summary: dict[str, Any] = ingest_batch.run([envelope], triggered_by=triggered_by)
    return summary


def _json_type(value: Any) -> str:
    names = {dict: "object", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _batch_failed(messages: Any, reason: str, triggered_by: str, via: str) -> dict[str, Any]:
    with session_scope() as session:
        sha = quarantine_batch(session, messages, reason, via)
        run_id = start_run(session, "incremental", triggered_by)
        session.execute(
            text(
                "UPDATE enrichment_pipeline_runs SET run_status = 'failed', completed_at = now(),"
                " critical_errors = ARRAY[:reason] WHERE id = :id"
            ),
            {"reason": reason, "id": str(run_id)},
        )
    log.error("batch quarantined", extra={"run_id": str(run_id), "reason": reason})
    return {"batch_quarantined": True, "reason": reason, "sha256": sha, "run_id": str(run_id)}
