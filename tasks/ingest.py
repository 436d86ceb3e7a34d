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
from sqlalchemy.orm import Session

from db.engine import session_scope
from pipeline.enrich import Next, create_jobs
from pipeline.ingest import RawMessage, ingest_messages
from pipeline.merge import upsert_artist
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
    messages: list[RawMessage], triggered_by: str = "scraper", via: str = "task"
) -> dict[str, Any]:
    """Append a batch of envelopes to bronze and start their enrichment."""
    nxt = Next()
    with session_scope() as session:
        result = ingest_messages(session, messages, via=via)
        # Every batch gets a run (even one of duplicates) so callers can follow it to the end.
        run_id = start_run(session, "incremental", triggered_by)
        if result.track_ids:
            nxt = create_jobs(session, run_id, result.track_ids)
        for artist_id in result.artist_ids:
            _artist_to_silver(session, str(artist_id))
        if not nxt:
            finish_run_if_done(session, run_id)
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
def ingest_envelope(envelope: RawMessage, triggered_by: str = "scraper") -> dict[str, Any]:
    """One envelope (a dict, or its JSON text)."""
    summary: dict[str, Any] = ingest_batch.run([envelope], triggered_by=triggered_by)
    return summary


def _artist_to_silver(session: Session, bronze_artist_id: str) -> None:
    """A scraped artist goes straight to silver: one row per normalised name or alias."""
    row = session.execute(
        text("SELECT artist_name, aliases FROM bronze_scraped_artists WHERE id = :id"),
        {"id": bronze_artist_id},
    ).one()
    upsert_artist(session, row.artist_name, bronze_artist_id, list(row.aliases or []))
