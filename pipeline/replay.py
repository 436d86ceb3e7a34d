"""Replay: re-run enrichment for chosen bronze tracks, from stored responses or live.

A replay request is a row of ``pipeline_replay_queue`` (the seed's SQL ``INSERT`` is the public
interface). :func:`claim_next` takes the next queued row with ``FOR UPDATE SKIP LOCKED`` (higher
``priority`` first, then oldest; the queue's index is ``priority DESC, created_at``), so several
workers never take the same row. :func:`start_replay`, in the same transaction, validates it
(:class:`ReplayError` -> the row is ``failed`` with the message in ``error_message``), opens a
``replay`` run and its jobs:

* default (``replay_mode='stored'``): every lookup re-runs the provider's own parsing code on the
  raw responses stored in ``bronze_api_enrichments``, handed to it without any HTTP (the
  provider's ``answerer``, :func:`stored_lookup`): zero provider calls. A request nothing stored
  answers is a failed lookup ("no stored response"), never a live call.
* ``force_re_enrichment`` (``replay_mode='live'``): the providers are asked again.
* ``use_historical_config``: the replay run's snapshot *is* the historical run's snapshot, so
  every step (planning, merge, provenance) resolves with the configuration that run used.
* ``fields_to_replay``: only those fields are looked up and written (:func:`merge_fields`,
  ``pipeline.merge.partial``, through the silver-track writer's partial mode); the silver track
  is the one the bronze row already feeds, and its quality is re-scored as a merge scores it (a
  restored required field brings it back to gold).
* ``target_layer='gold'``: no enrichment; gold rows of the bronze rows' silver tracks are
  re-aggregated.

Jobs are processed in batches: a stored batch by :func:`process_jobs` (one transaction per
batch; stored responses of a batch are read in one query, ``pipeline.stored_answers``), a live
one by :func:`process_live` (the tasks layer supplies the live lookup function; each round's
lookups are claimed in one short transaction, the providers asked with none open, the outcomes
recorded in another, so no row lock or connection is held across a provider call).
:func:`complete_finished` marks rows ``completed``/``failed`` once the run is closed, writing
a summary under ``error_summary -> 'replay'`` of the run (the queue has no summary column).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from db.bulk import to_jsonb
from pipeline.enrich import create_jobs, lookup_inputs, record_outcomes
from pipeline.errors import ReplayError
from pipeline.lookups.engine import LookupFn, ask_each, outcome_of
from pipeline.lookups.outcome import LookupInput, LookupOutcome
from pipeline.merge import MergeResult, merge_batch, merge_fields, silver_ids_for_bronze
from pipeline.runs import load_plan, run_snapshot, start_run
from pipeline.stored_answers import (
    NoStoredResponse,
    stored_exchange,
    stored_lookup,
    stored_outcomes,
)

__all__ = [
    "NoStoredResponse",
    "QueueRow",
    "ReplayError",
    "Started",
    "adopt_snapshot",
    "claim_next",
    "claim_round",
    "complete_finished",
    "fail_row",
    "merge_fields",
    "merge_replayed",
    "process_jobs",
    "process_live",
    "snapshot_time",
    "start_replay",
    "stored_exchange",
    "stored_lookup",
    "stored_outcomes",
]


# --- the queue --------------------------------------------------------------------------------
@dataclass(frozen=True)
class QueueRow:
    id: str
    bronze_ids: list[str]
    target_layer: str
    fields: list[str] | None
    force: bool
    historical_run_id: str | None
    requested_by: str


@dataclass
class Started:
    """What :func:`start_replay` opened; the caller processes ``job_ids`` after commit."""

    run_id: str
    mode: str  # stored | live | gold
    job_ids: list[str] = field(default_factory=list)
    partial: bool = False
    silver_ids: list[str] = field(default_factory=list)


def claim_next(session: Session) -> QueueRow | None:
    """Lock the next queued row (skipping rows other workers hold) and mark it processing."""
    row = session.execute(
        text(
            """
            UPDATE pipeline_replay_queue q SET status = 'processing', started_at = now()
            WHERE q.id = (SELECT id FROM pipeline_replay_queue WHERE status = 'queued'
                          ORDER BY priority DESC, created_at, id
                          LIMIT 1 FOR UPDATE SKIP LOCKED)
            RETURNING q.id, q.bronze_ids, q.target_layer, q.fields_to_replay,
                      q.force_re_enrichment, q.use_historical_config, q.config_snapshot_run_id,
                      q.requested_by
            """
        )
    ).first()
    if row is None:
        return None
    return QueueRow(
        id=str(row.id),
        bronze_ids=list(row.bronze_ids or []),
        target_layer=row.target_layer,
        fields=list(row.fields_to_replay) if row.fields_to_replay else None,
        force=bool(row.force_re_enrichment),
        historical_run_id=(
            str(row.config_snapshot_run_id)
            if row.use_historical_config and row.config_snapshot_run_id
            else None
        ),
        requested_by=row.requested_by,
    )


def fail_row(session: Session, queue_id: str, message: str) -> None:
    session.execute(
        text(
            "UPDATE pipeline_replay_queue SET status = 'failed', error_message = :m, "
            "completed_at = now() WHERE id = :id"
        ),
        {"m": message[:2000], "id": queue_id},
    )


def adopt_snapshot(session: Session, run_id: str, historical_run_id: str) -> None:
    """Time travel: the replay run's snapshot becomes the historical run's snapshot."""
    session.execute(
        text(
            """
            UPDATE enrichment_pipeline_runs r
            SET waterfall_config_snapshot = h.waterfall_config_snapshot,
                provider_config_snapshot = h.provider_config_snapshot
            FROM enrichment_pipeline_runs h WHERE r.id = :run AND h.id = :hist
            """
        ),
        {"run": run_id, "hist": historical_run_id},
    )


def _validate(session: Session, row: QueueRow) -> None:
    if not row.bronze_ids:
        raise ReplayError("bronze_ids is empty: nothing to replay")
    found = {
        str(r[0])
        for r in session.execute(
            text("SELECT id FROM bronze_scraped_tracks WHERE id = ANY(CAST(:ids AS uuid[]))"),
            {"ids": row.bronze_ids},
        )
    }
    missing = [b for b in row.bronze_ids if b.lower() not in found]
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise ReplayError(f"unknown bronze track ids ({len(missing)}): {shown}")
    if row.historical_run_id:
        hist = session.execute(
            text(
                "SELECT run_status, waterfall_config_snapshot FROM enrichment_pipeline_runs "
                "WHERE id = :id"
            ),
            {"id": row.historical_run_id},
        ).first()
        if hist is None:
            raise ReplayError(f"unknown historical run {row.historical_run_id}")
        if hist.run_status == "failed":
            raise ReplayError(
                f"historical run {row.historical_run_id} failed; its configuration is not a "
                "trustworthy basis for a replay"
            )
        if not hist.waterfall_config_snapshot:
            raise ReplayError(f"historical run {row.historical_run_id} has no config snapshot")


def start_replay(session: Session, row: QueueRow, environment: str = "production") -> Started:
    """Validate the claimed row and open its replay run (see module docstring)."""
    _validate(session, row)
    run_id = str(start_run(session, "replay", f"replay:{row.id}", environment))
    if row.historical_run_id:
        adopt_snapshot(session, run_id, row.historical_run_id)
    if row.fields:
        # Checked against the configuration the replay will use (the caller runs this inside
        # a savepoint, so a rejected request leaves no run behind).
        plan = load_plan(session, run_id)
        unknown = sorted(set(row.fields) - set(plan.rules))
        if unknown:
            raise ReplayError(
                f"unknown field names {unknown}; the waterfall has {sorted(plan.rules)}"
            )
    session.execute(
        text("UPDATE pipeline_replay_queue SET assigned_run_id = :run WHERE id = :id"),
        {"run": run_id, "id": row.id},
    )
    if row.target_layer == "gold":
        return _start_gold(session, row, run_id)
    mode = "live" if row.force else "stored"
    nxt = create_jobs(session, run_id, row.bronze_ids, fields=row.fields, replay_mode=mode)
    job_ids = sorted({j for jobs in nxt.lookups.values() for j in jobs} | set(nxt.merges))
    return Started(run_id, mode, job_ids, partial=bool(row.fields))


def _start_gold(session: Session, row: QueueRow, run_id: str) -> Started:
    from pipeline.gold import artists_of_tracks, upsert_artist_analytics, upsert_track_analytics

    silver_ids = silver_ids_for_bronze(session, list(row.bronze_ids))
    if not silver_ids:
        raise ReplayError("target_layer gold: no silver track is built from these bronze ids")
    n = upsert_track_analytics(session, silver_ids)
    upsert_artist_analytics(session, artists_of_tracks(session, silver_ids))
    session.execute(
        text(
            "UPDATE enrichment_pipeline_runs SET records_processed = :n, records_succeeded = :ok "
            "WHERE id = :run"
        ),
        {"n": len(silver_ids), "ok": n, "run": run_id},
    )
    session.execute(text("SELECT complete_pipeline_run(:run, 'completed')"), {"run": run_id})
    return Started(run_id, "gold", silver_ids=silver_ids)


# --- processing jobs ----------------------------------------------------------------------------
# Each job's lookups by primary key (see ``pipeline.lookups.inputs.PENDING_BY_KEY`` for why not a
# plain "status = 'pending'" filter).
_PENDING_SQL = text(
    """
    SELECT l.provider, l.job_id::text FROM unnest(CAST(:ids AS uuid[])) AS k(job_id)
    CROSS JOIN LATERAL (
      SELECT provider, job_id, status FROM enrichment_lookups l WHERE l.job_id = k.job_id OFFSET 0
    ) l
    WHERE l.status = 'pending' ORDER BY l.provider, l.job_id
    """
)


def process_jobs(
    session: Session,
    job_ids: list[str],
    lookup: LookupFn | None = None,
    *,
    partial: bool = False,
) -> list[MergeResult]:
    """Run every round of a batch of jobs' lookups, then merge them (one transaction).

    ``lookup=None`` is the stored replay: each provider's stored responses for the whole batch
    are read in one query and re-parsed in memory (:func:`stored_outcomes`); each round is then
    recorded with one ``record_outcomes`` for all its providers, and the batch merged with one
    ``merge_batch``: a few statements per batch instead of a few dozen per job. Replays
    override the current silver values (re-deriving them is the point of the request); a
    partial replay writes only its fields (:func:`merge_fields`).
    """
    for _ in range(20):  # rounds; a waterfall has at most four priorities per field
        pending: dict[str, list[str]] = {}
        for provider, job_id in session.execute(_PENDING_SQL, {"ids": job_ids}):
            pending.setdefault(provider, []).append(job_id)
        if not pending:
            break
        # Every provider of the round is recorded together: one lock, one write per table and
        # one fan-in (``advance_many``) per round, not one per provider. Fan-in per provider
        # also found the jobs still waiting on the round's other providers, and did nothing.
        outcomes: list[LookupOutcome] = []
        for provider, jobs in pending.items():
            inputs = lookup_inputs(session, jobs, provider)
            if lookup is None:
                outcomes += stored_outcomes(session, provider, inputs)
            else:
                ask = functools.partial(lookup, session)
                outcomes += [outcome_of(functools.partial(ask, li), li) for li in inputs]
        record_outcomes(session, outcomes, attempts=1)
    return merge_replayed(session, job_ids, partial=partial)


def merge_replayed(session: Session, job_ids: list[str], *, partial: bool) -> list[MergeResult]:
    """Merge a chunk of replay jobs whose lookups are done: the replayed fields only
    (:func:`merge_fields`) or the whole track, replayed values overriding the current ones."""
    if partial:
        return [merge_fields(session, job_id) for job_id in job_ids]
    return merge_batch(session, job_ids, override_fields=True)


def claim_round(session: Session, job_ids: list[str]) -> list[LookupInput]:
    """The pending lookups of a chunk's next round, claimed in the caller's (short) transaction.

    Claiming touches ``updated_at``, so the sweeper does not take them for lost while the
    providers are asked. It is not exclusive: a redelivered chunk (or the sweeper) may ask the
    same lookup again, and :func:`~pipeline.enrich.record_outcomes` records only lookups still
    pending, so the first answer recorded wins and a second adds nothing.
    """
    pending: dict[str, list[str]] = {}
    for provider, job_id in session.execute(_PENDING_SQL, {"ids": job_ids}):
        pending.setdefault(provider, []).append(job_id)
    inputs = [li for p, jobs in sorted(pending.items()) for li in lookup_inputs(session, jobs, p)]
    if inputs:
        session.execute(
            text(
                "UPDATE enrichment_lookups l SET updated_at = now() "
                "FROM unnest(CAST(:jobs AS uuid[]), CAST(:providers AS text[])) AS k(job, p) "
                "WHERE l.job_id = k.job AND l.provider = k.p AND l.status = 'pending'"
            ),
            {"jobs": [li.job_id for li in inputs], "providers": [li.provider for li in inputs]},
        )
    return inputs


def process_live(
    sessions: Callable[[], AbstractContextManager[Session]],
    job_ids: list[str],
    lookup: LookupFn | None = None,
    *,
    partial: bool = False,
) -> list[MergeResult]:
    """A live replay chunk with no transaction open while a provider is asked.

    Each round: claim the pending lookups in one short transaction (:func:`claim_round`), ask
    the providers with none open (HTTP never holds a row lock or a connection in a
    transaction), record the outcomes in another short transaction; then merge in a last one.
    ``sessions()`` opens a unit of work (``db.engine.session_scope``). The asking is the
    lookup engine's (``pipeline.lookups.engine.ask_each``: ``lookup``, by default the engine's
    own answerer; a scraper lookup, a database read, gets a short session of its own; answers
    are journaled as they arrive, and a journaled one is not asked again).
    """
    for _ in range(20):  # rounds; a waterfall has at most four priorities per field
        with sessions() as session:
            inputs = claim_round(session, job_ids)
        if not inputs:
            break
        outcomes = ask_each(sessions, inputs, lookup)
        with sessions() as session:
            record_outcomes(session, outcomes, attempts=1)
    with sessions() as session:
        return merge_replayed(session, job_ids, partial=partial)


# --- completion -------------------------------------------------------------------------------
def _summary(session: Session, run_id: str) -> dict[str, Any]:
    row = session.execute(
        text(
            """
            SELECT r.run_status, r.records_processed, r.records_succeeded, r.records_failed,
                   r.total_api_calls,
                   (SELECT count(*) FROM enrichment_transformations t
                     WHERE t.run_id = r.id AND t.transformation_type = 'merge') AS merges,
                   (SELECT count(*) FROM enrichment_transformations t
                     WHERE t.run_id = r.id AND t.transformation_type = 'merge'
                       AND t.output_value IS DISTINCT FROM (
                           SELECT p.output_value FROM enrichment_transformations p
                           WHERE p.silver_id = t.silver_id
                             AND p.metadata_field = t.metadata_field
                             AND p.transformation_type = 'merge' AND p.run_id <> r.id
                             AND p.created_at <= t.created_at
                           ORDER BY p.created_at DESC LIMIT 1)) AS changed,
                   (SELECT min(last_error) FROM enrichment_jobs j
                     WHERE j.run_id = r.id AND j.status = 'failed') AS first_error
            FROM enrichment_pipeline_runs r WHERE r.id = :run
            """
        ),
        {"run": run_id},
    ).one()
    return {
        "run_status": row.run_status,
        "records": row.records_processed,
        "succeeded": row.records_succeeded,
        "failed": row.records_failed,
        "api_calls": row.total_api_calls,
        "fields_merged": row.merges,
        "fields_changed": row.changed,
        "first_error": row.first_error,
    }


def complete_finished(session: Session) -> list[str]:
    """Close every processing row whose replay run is closed; return their ids."""
    rows = session.execute(
        text(
            """
            SELECT q.id, q.assigned_run_id FROM pipeline_replay_queue q
            JOIN enrichment_pipeline_runs r ON r.id = q.assigned_run_id
            WHERE q.status = 'processing' AND r.run_status <> 'running'
            FOR UPDATE OF q SKIP LOCKED
            """
        )
    ).all()
    done = []
    for r in rows:
        summary = _summary(session, str(r.assigned_run_id))
        session.execute(
            text(
                "UPDATE enrichment_pipeline_runs SET error_summary = "
                "coalesce(error_summary, '{}') || jsonb_build_object('replay', "
                "CAST(:s AS jsonb)) WHERE id = :run"
            ),
            {"s": to_jsonb(summary), "run": str(r.assigned_run_id)},
        )
        failed = summary["run_status"] == "failed"
        session.execute(
            text(
                "UPDATE pipeline_replay_queue SET status = :st, completed_at = now(), "
                "error_message = :err WHERE id = :id"
            ),
            {
                "st": "failed" if failed else "completed",
                "err": (f"every job failed: {summary['first_error']}" if failed else None),
                "id": r.id,
            },
        )
        done.append(str(r.id))
    return done


def snapshot_time(session: Session, run_id: str) -> Any:
    """When a run's configuration snapshot was taken (its start)."""
    run_snapshot(session, run_id)  # raises LookupError for an unknown run
    return session.execute(
        text("SELECT started_at FROM enrichment_pipeline_runs WHERE id = :id"), {"id": run_id}
    ).scalar_one()
