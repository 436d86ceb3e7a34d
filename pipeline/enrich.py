"""Enrichment fan-out and fan-in, as database operations (no Celery here).

A *job* is one bronze track in one run; a *lookup* is one provider asked about that job, for
every plan field it serves. The join lives in PostgreSQL (``enrichment_jobs`` and
``enrichment_lookups``):
each finished lookup, in the same transaction that records it, locks its job and, when no lookup
of the round is pending, plans the next round (sequential fields) or hands the job to merge.
That join survives redelivery (a finished lookup is never redone) and a killed worker (the message
is redelivered; the sweeper re-enqueues anything older than its timeout), and needs no result
backend. Callers enqueue :class:`Next` only after commit.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.orm import Session

from pipeline.matching import TrackQuery
from pipeline.runs import load_plan, run_snapshot
from pipeline.waterfall import Outcome, next_lookups

__all__ = [
    "LookupInput",
    "Next",
    "advance",
    "create_jobs",
    "is_unidentified",
    "job_outcomes",
    "lookup_input",
    "record_failure",
    "record_result",
    "to_jsonb",
]

SCRAPER_PROVIDERS = frozenset({"mixesdb", "1001tracklists"})
#: An id learned in an earlier round is reused only from a confident match.
LEARN_MIN = 0.85


@dataclass
class Next:
    """Work to enqueue after commit: lookups per provider, and jobs ready to merge."""

    lookups: dict[str, list[str]] = field(default_factory=dict)
    merges: list[str] = field(default_factory=list)

    def extend(self, other: Next) -> Next:
        for provider, jobs in other.lookups.items():
            self.lookups.setdefault(provider, []).extend(jobs)
        self.merges.extend(other.merges)
        return self

    def __bool__(self) -> bool:
        return bool(self.lookups or self.merges)


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\\u0000")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nul(v) for v in value]
    return value


def to_jsonb(value: Any) -> str:
    """JSON text PostgreSQL's JSONB accepts. JSONB refuses U+0000, so a NUL inside a provider's
    body is stored as the visible six characters ``\\u0000`` instead of failing the write."""
    return json.dumps(_without_nul(value), ensure_ascii=False, default=str)


def is_unidentified(artist: str | None, title: str | None) -> bool:
    """Setlists list unknown tracks as ``ID - ID``: nothing to enrich, nothing to deduplicate."""
    a = (artist or "").strip().casefold()
    t = (title or "").strip().casefold()
    return not a or not t or a == "id" or t == "id"


def _plan_round(session: Session, job_id: str, round_no: int, wanted: dict[str, list[str]]) -> None:
    for provider, fields in wanted.items():
        session.execute(
            text(
                "INSERT INTO enrichment_lookups (job_id, provider, round, fields) "
                "VALUES (:job, :provider, :round, :fields) ON CONFLICT DO NOTHING"
            ),
            {"job": job_id, "provider": provider, "round": round_no, "fields": fields},
        )


def create_jobs(
    session: Session,
    run_id: UUID | str,
    bronze_ids: Iterable[UUID | str],
    *,
    fields: Sequence[str] | None = None,
    replay_mode: str | None = None,
    config_run_id: UUID | str | None = None,
) -> Next:
    """Open one job per bronze track and plan round one. Idempotent per (run, bronze id)."""
    plan = load_plan(session, run_id, config_run_id)
    nxt = Next()
    for bronze_id in bronze_ids:
        row = session.execute(
            text(
                """
                INSERT INTO enrichment_jobs (run_id, bronze_track_id, fields, replay_mode)
                VALUES (:run, :bronze, :fields, :mode)
                ON CONFLICT (run_id, bronze_track_id) DO NOTHING
                RETURNING id
                """
            ),
            {"run": str(run_id), "bronze": str(bronze_id), "fields": fields, "mode": replay_mode},
        ).first()
        if row is None:
            continue  # this run already has the job: a redelivered message
        job_id = str(row[0])
        names = session.execute(
            text("SELECT artist_name, track_title FROM bronze_scraped_tracks WHERE id = :id"),
            {"id": str(bronze_id)},
        ).one()
        wanted = {} if is_unidentified(*names) else next_lookups(plan, [], [], fields)
        if not wanted:
            session.execute(
                text("UPDATE enrichment_jobs SET status = 'merging' WHERE id = :id"),
                {"id": job_id},
            )
            nxt.merges.append(job_id)
            continue
        _plan_round(session, job_id, 1, wanted)
        for provider in wanted:
            nxt.lookups.setdefault(provider, []).append(job_id)
    return nxt


@dataclass(frozen=True)
class LookupInput:
    """Everything a lookup task needs, read before the (slow) provider call."""

    job_id: str
    run_id: str
    bronze_id: str
    provider: str
    fields: list[str]
    query: TrackQuery
    replay_mode: str | None
    cost_per_call: Decimal


def _query_from_bronze(row: Any) -> TrackQuery:
    raw = row.raw_json if isinstance(row.raw_json, dict) else {}
    ids = {
        k[: -len("_id")]: str(v)
        for k, v in raw.items()
        if k.endswith("_id") and isinstance(v, str | int) and k != "source_track_id"
    }
    isrc = raw.get("isrc") if isinstance(raw.get("isrc"), str) else None
    duration = raw.get("duration_ms")
    return TrackQuery(
        artist=row.artist_name or "",
        title=row.track_title or "",
        isrc=isrc,
        duration_ms=duration
        if isinstance(duration, int) and not isinstance(duration, bool)
        else None,
        provider_ids=ids,
    )


def _with_learned_ids(query: TrackQuery, outcomes: Sequence[Outcome]) -> TrackQuery:
    """Later rounds know more: an ISRC or a MusicBrainz id found in round one lets AcousticBrainz
    (which looks up by MBID) or an ISRC lookup answer in round two."""
    ids = dict(query.provider_ids)
    isrc = query.isrc
    for o in sorted(outcomes, key=lambda o: -(o.confidence or 0)):
        if not o.success or not isinstance(o.value, str) or (o.confidence or 0) < LEARN_MIN:
            continue
        if o.field == "isrc" and isrc is None:
            isrc = o.value
        elif o.field.endswith("_id"):
            ids.setdefault(o.field[: -len("_id")], o.value)
    return TrackQuery(query.artist, query.title, isrc, query.duration_ms, ids)


_COSTS: dict[str, dict[str, Decimal]] = {}


def _run_costs(session: Session, run_id: str) -> dict[str, Decimal]:
    """Price per call of each provider as the run's snapshot recorded it (cached: immutable)."""
    costs = _COSTS.get(run_id)
    if costs is None:
        if len(_COSTS) > 512:
            _COSTS.clear()
        _, providers = run_snapshot(session, run_id)
        costs = {
            name: Decimal(str((row or {}).get("cost_per_call_usd") or 0))
            for name, row in providers.items()
        }
        _COSTS[run_id] = costs
    return costs


def lookup_input(session: Session, job_id: str, provider: str) -> LookupInput | None:
    """The pending lookup's inputs, or None when it is already done (redelivered message)."""
    row = session.execute(
        text(
            """
            SELECT l.fields, l.status, j.run_id, j.bronze_track_id, j.replay_mode,
                   b.artist_name, b.track_title, b.raw_json
            FROM enrichment_lookups l
            JOIN enrichment_jobs j ON j.id = l.job_id
            JOIN bronze_scraped_tracks b ON b.id = j.bronze_track_id
            WHERE l.job_id = :job AND l.provider = :provider
            """
        ),
        {"job": job_id, "provider": provider},
    ).first()
    if row is None or row.status != "pending":
        return None
    cost = _run_costs(session, str(row.run_id)).get(provider, Decimal(0))
    return LookupInput(
        job_id=job_id,
        run_id=str(row.run_id),
        bronze_id=str(row.bronze_track_id),
        provider=provider,
        fields=list(row.fields),
        query=_with_learned_ids(
            _query_from_bronze(row),
            job_outcomes(session, str(row.run_id), str(row.bronze_track_id)),
        ),
        replay_mode=row.replay_mode,
        cost_per_call=cost,
    )


def _lock_pending(session: Session, job_id: str, provider: str) -> bool:
    status = session.execute(
        text(
            "SELECT status FROM enrichment_lookups WHERE job_id = :job AND provider = :p "
            "FOR NO KEY UPDATE"
        ),
        {"job": job_id, "p": provider},
    ).scalar_one_or_none()
    return status == "pending"


_RESPONSE_SQL = text(
    """
    INSERT INTO bronze_api_enrichments
        (bronze_track_id, api_provider, api_endpoint, api_version, request_params,
         raw_response, response_status, run_id)
    VALUES (:bronze, :provider, :endpoint, :version, CAST(:params AS jsonb),
            CAST(:body AS jsonb), :status, :run)
    """
)


def _store_responses(session: Session, li: LookupInput, responses: Sequence[Any]) -> None:
    """Every raw response of a lookup, in one batch (executemany)."""
    rows = [
        {
            "bronze": li.bronze_id,
            "provider": li.provider,
            "endpoint": r.endpoint,
            "version": r.api_version,
            "params": to_jsonb(dict(r.params)),
            "body": to_jsonb(r.body if isinstance(r.body, dict | list) else {"_text": r.body}),
            "status": r.status_code or 0,
            "run": li.run_id,
        }
        for r in responses
    ]
    if rows:
        session.execute(_RESPONSE_SQL, rows)


_TRANSFORMATION_SQL = text(
    """
    INSERT INTO enrichment_transformations
        (run_id, bronze_id, transformation_type, metadata_field, provider_used,
         provider_confidence, input_value, output_value, success, error_message, retry_count,
         processing_time_ms, api_endpoint_called, api_response_code, api_cost_usd)
    VALUES (:run, :bronze, 'enrichment', :field, :provider, :conf, CAST(:input AS jsonb),
            CAST(:output AS jsonb), :success, :error, :retries, :ms, :endpoint, :code, :cost)
    """
)


def _close_lookup(
    session: Session,
    li: LookupInput,
    status: str,
    attempts: int,
    calls: int,
    cost: Decimal,
    *,
    latency_ms: int | None = None,
    error: str | None = None,
) -> None:
    """Mark the lookup answered (or given up) with its counters; the join reads this row."""
    session.execute(
        text(
            """
            UPDATE enrichment_lookups SET status = :status, attempts = :attempts,
                   api_calls = :calls, cost_usd = :cost, latency_ms = :ms, error = :error,
                   updated_at = now()
            WHERE job_id = :job AND provider = :provider
            """
        ),
        {
            "status": status,
            "attempts": attempts,
            "calls": calls,
            "cost": cost,
            "ms": latency_ms,
            "error": error,
            "job": li.job_id,
            "provider": li.provider,
        },
    )


def record_result(
    session: Session,
    li: LookupInput,
    result: Any,
    *,
    attempts: int,
    latency_ms: int,
) -> Next:
    """Store a provider's answer (raw responses, one transformation per field) and advance."""
    if not _lock_pending(session, li.job_id, li.provider):
        return Next()
    _store_responses(session, li, result.responses)
    calls = len(result.responses)
    cost = li.cost_per_call * calls
    last = result.responses[-1] if result.responses else None
    rows = []
    for f in li.fields:
        base = {
            "run": li.run_id,
            "bronze": li.bronze_id,
            "field": f,
            "provider": li.provider,
            "retries": max(attempts - 1, 0),
            "ms": latency_ms,
            "endpoint": last.endpoint if last else None,
            "code": last.status_code if last else None,
            "cost": cost / max(len(li.fields), 1),
        }
        value = result.values.get(f)
        if value is not None:
            rows.append(
                base
                | {
                    "conf": round(float(value.confidence), 2),
                    "input": to_jsonb(value.raw),
                    "output": to_jsonb(value.value),
                    "success": True,
                    "error": None,
                }
            )
            continue
        if f in result.rejected:
            error = f"rejected: {result.rejected[f]}"
        elif f in result.unavailable:
            error = f"unavailable: {result.unavailable[f]}"
        else:
            error = "not found" if result.status != "unavailable" else "unavailable"
        rows.append(
            base
            | {"conf": None, "input": "null", "output": "null", "success": False, "error": error}
        )
    if rows:
        session.execute(_TRANSFORMATION_SQL, rows)
    _close_lookup(session, li, result.status, attempts, calls, cost, latency_ms=latency_ms)
    return advance(session, li.job_id)


def record_failure(
    session: Session,
    li: LookupInput,
    error: str,
    *,
    status: str = "failed",
    responses: Sequence[Any] = (),
    attempts: int = 1,
) -> Next:
    """A lookup that gave up (retries exhausted, circuit open, auth): logged, then advance.

    The waterfall moves on to the next priority; provenance shows why this provider did not win.
    """
    if not _lock_pending(session, li.job_id, li.provider):
        return Next()
    _store_responses(session, li, responses)
    rows = [
        {
            "run": li.run_id,
            "bronze": li.bronze_id,
            "field": f,
            "provider": li.provider,
            "conf": None,
            "input": "null",
            "output": "null",
            "success": False,
            "error": error[:2000],
            "retries": max(attempts - 1, 0),
            "ms": None,
            "endpoint": None,
            "code": None,
            "cost": li.cost_per_call * len(responses),
        }
        for f in li.fields
    ]
    if rows:
        session.execute(_TRANSFORMATION_SQL, rows)
    _close_lookup(
        session,
        li,
        status,
        attempts,
        len(responses),
        li.cost_per_call * len(responses),
        error=error[:2000],
    )
    return advance(session, li.job_id)


def job_outcomes(session: Session, run_id: str, bronze_id: str) -> list[Outcome]:
    """Every provider's field outcome for a job, from ``enrichment_transformations``."""
    rows = session.execute(
        text(
            """
            SELECT id, provider_used, metadata_field, output_value, provider_confidence, success
            FROM enrichment_transformations
            WHERE run_id = :run AND bronze_id = :bronze AND transformation_type = 'enrichment'
            ORDER BY created_at, id
            """
        ),
        {"run": run_id, "bronze": bronze_id},
    )
    return [
        Outcome(
            provider=r.provider_used,
            field=r.metadata_field,
            value=r.output_value,
            confidence=None if r.provider_confidence is None else float(r.provider_confidence),
            success=r.success,
            transformation_id=r.id,
        )
        for r in rows
    ]


def advance(session: Session, job_id: str) -> Next:
    """Fan-in: if no lookup of the job is pending, plan the next round or hand it to merge."""
    job = session.execute(
        text(
            "SELECT id, run_id, bronze_track_id, status, round, fields FROM enrichment_jobs "
            "WHERE id = :id FOR NO KEY UPDATE"
        ),
        {"id": job_id},
    ).first()
    if job is None or job.status != "enriching":
        return Next()
    lookups = session.execute(
        text("SELECT provider, status FROM enrichment_lookups WHERE job_id = :id"),
        {"id": job_id},
    ).all()
    if any(s == "pending" for _, s in lookups):
        return Next()
    plan = load_plan(session, job.run_id)
    outcomes = job_outcomes(session, str(job.run_id), str(job.bronze_track_id))
    wanted = next_lookups(plan, [p for p, _ in lookups], outcomes, job.fields)
    if wanted:
        session.execute(
            text("UPDATE enrichment_jobs SET round = round + 1, updated_at = now() WHERE id = :id"),
            {"id": job_id},
        )
        _plan_round(session, job_id, job.round + 1, wanted)
        return Next(lookups={p: [job_id] for p in wanted})
    session.execute(
        text("UPDATE enrichment_jobs SET status = 'merging', updated_at = now() WHERE id = :id"),
        {"id": job_id},
    )
    return Next(merges=[job_id])
