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

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.orm import Session

from db.bulk import Bulk, to_jsonb
from pipeline.lookups import journal
from pipeline.lookups.inputs import PENDING_BY_KEY, lookup_inputs
from pipeline.lookups.outcome import LookupInput, LookupOutcome
from pipeline.runs import load_plan
from pipeline.tracklist import is_unidentified
from pipeline.waterfall import Outcome, Plan, next_lookups
from providers.contract import LookupResult, RawResponse

__all__ = [
    "_PLAN_ROUND",  # shared with pipeline.identity_first and singleflight (they plan round one)
    "LookupInput",  # defined in pipeline.lookups.outcome; kept here for old importers
    "LookupOutcome",
    "Next",
    "advance_many",
    "create_jobs",
    "job_outcomes",
    "lookup_inputs",  # defined in pipeline.lookups.inputs; kept here for old importers
    "outcomes_by_job",
    "planned_fields",
    "record_outcomes",
]


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


_PLAN_ROUND = Bulk.of(
    "INSERT INTO enrichment_lookups (job_id, provider, round, fields) "
    "SELECT r.job, r.provider, r.round, r.fields FROM {rows} "
    "ON CONFLICT DO NOTHING",
    [("job", "uuid"), ("provider", "text"), ("round", "int"), ("fields", "text[]")],
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
    """Open one job per bronze track and plan round one, in a handful of statements whatever the
    number of tracks. Idempotent per (run, bronze id): ids that already have a job in this run (a
    redelivered message) are skipped. Unknown bronze ids raise ``LookupError``."""
    plan = load_plan(session, run_id, config_run_id)
    ids = list(dict.fromkeys(str(b) for b in bronze_ids))
    if not ids:
        return Next()
    names = {
        str(r.id): r
        for r in session.execute(
            text(
                "SELECT id, artist_name, track_title FROM bronze_scraped_tracks "
                "WHERE id = ANY(CAST(:ids AS uuid[]))"
            ),
            {"ids": ids},
        )
    }
    missing = [i for i in ids if i not in names]
    if missing:
        raise LookupError(f"unknown bronze track ids: {', '.join(missing[:10])}")
    created: dict[str, str] = dict(
        session.execute(
            text(
                """
                INSERT INTO enrichment_jobs (run_id, bronze_track_id, fields, replay_mode)
                SELECT CAST(:run AS uuid), b, CAST(:fields AS text[]), :mode
                FROM unnest(CAST(:ids AS uuid[])) AS b
                ON CONFLICT (run_id, bronze_track_id) DO NOTHING
                RETURNING bronze_track_id::text, id::text
                """
            ),
            {"run": str(run_id), "ids": ids, "fields": fields, "mode": replay_mode},
        ).all()
    )
    nxt = Next()
    handled: set[str] = set()
    if replay_mode is None and fields is None and config_run_id is None:
        # Identity before fan-out (issue 17): known tracks ask only for stale fields, repeat
        # sightings of a new track wait for its first one.
        from pipeline.identity_first import plan_sightings

        nxt, handled = plan_sightings(session, str(run_id), plan, created)
    rounds: list[dict[str, Any]] = []
    first_round = next_lookups(plan, [], [], fields)
    for bronze_id in ids:
        job_id = created.get(bronze_id)
        if job_id is None or bronze_id in handled:
            continue  # this run already has the job (a redelivered message), or planned above
        row = names[bronze_id]
        wanted = {} if is_unidentified(row.artist_name, row.track_title) else first_round
        if not wanted:
            nxt.merges.append(job_id)
            continue
        for provider, provider_fields in wanted.items():
            rounds.append(
                {"job": job_id, "provider": provider, "round": 1, "fields": provider_fields}
            )
            nxt.lookups.setdefault(provider, []).append(job_id)
    if rounds:
        _PLAN_ROUND.run(session, rounds)
    if nxt.merges:
        session.execute(
            text(
                "UPDATE enrichment_jobs SET status = 'merging' WHERE id = ANY(CAST(:ids AS uuid[]))"
            ),
            {"ids": nxt.merges},
        )
    return nxt


# Rows are locked as the keys are read, so callers pass the keys sorted by (job, provider), and
# concurrent batches lock in one order and cannot deadlock (a job id as text sorts as the uuid).
_LOCK_PENDING_SQL = text(
    f"""
    SELECT l.job_id::text, l.provider
    {PENDING_BY_KEY}
    WHERE l.status = 'pending'
    ORDER BY l.job_id, l.provider
    FOR NO KEY UPDATE OF l
    """
)

_RESPONSE = Bulk.of(
    """
    INSERT INTO bronze_api_enrichments
        (bronze_track_id, api_provider, api_endpoint, api_version, request_params,
         raw_response, response_status, run_id)
    SELECT r.bronze, r.provider, r.endpoint, r.version, r.params, r.body, r.status, r.run
    FROM {rows}
    """,
    [
        ("bronze", "uuid"), ("provider", "text"), ("endpoint", "text"), ("version", "text"),
        ("params", "jsonb"), ("body", "jsonb"), ("status", "int"), ("run", "uuid"),
    ],
)  # fmt: skip

_TRANSFORMATION = Bulk.of(
    """
    INSERT INTO enrichment_transformations
        (run_id, bronze_id, transformation_type, metadata_field, provider_used,
         provider_confidence, input_value, output_value, success, error_message, retry_count,
         processing_time_ms, api_endpoint_called, api_response_code, api_cost_usd)
    SELECT r.run, r.bronze, 'enrichment', r.field, r.provider, r.conf, r.input, r.output,
           r.success, r.error, r.retries, r.ms, r.endpoint, r.code, r.cost
    FROM {rows}
    """,
    [
        ("run", "uuid"), ("bronze", "uuid"), ("field", "text"), ("provider", "text"),
        ("conf", "numeric"), ("input", "jsonb"), ("output", "jsonb"), ("success", "bool"),
        ("error", "text"), ("retries", "int"), ("ms", "int"), ("endpoint", "text"),
        ("code", "int"), ("cost", "numeric"),
    ],
)  # fmt: skip

_CLOSE = Bulk.of(
    """
    UPDATE enrichment_lookups l SET status = r.status, attempts = r.attempts,
           api_calls = r.calls, cost_usd = r.cost, latency_ms = r.ms, error = r.error,
           updated_at = now()
    FROM {rows}
    WHERE l.job_id = r.job AND l.provider = r.provider
    """,
    [
        ("status", "text"), ("attempts", "int"), ("calls", "int"), ("cost", "numeric"),
        ("ms", "int"), ("error", "text"), ("job", "uuid"), ("provider", "text"),
    ],
)  # fmt: skip


def _response_rows(li: LookupInput, responses: Sequence[RawResponse]) -> list[dict[str, Any]]:
    return [
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


def _field_error(result: LookupResult, f: str) -> str:
    if f in result.rejected:
        return f"rejected: {result.rejected[f]}"
    if f in result.unavailable:
        return f"unavailable: {result.unavailable[f]}"
    return "not found" if result.status != "unavailable" else "unavailable"


def _transformation_rows(
    o: LookupOutcome, responses: Sequence[RawResponse], attempts: int, cost: Decimal
) -> list[dict[str, Any]]:
    """One row per asked field; the call's cost is divided across them (sums stay exact)."""
    li, result = o.li, o.result
    last = responses[-1] if responses and result is not None else None
    share = cost / max(len(li.fields), 1)
    rows = []
    for f in li.fields:
        row: dict[str, Any] = {
            "run": li.run_id,
            "bronze": li.bronze_id,
            "field": f,
            "provider": li.provider,
            "retries": max(attempts - 1, 0),
            "ms": o.latency_ms if result is not None else None,
            "endpoint": last.endpoint if last else None,
            "code": last.status_code if last else None,
            "cost": share,
            "conf": None,
            "input": "null",
            "output": "null",
            "success": False,
        }
        value = result.values.get(f) if result is not None else None
        if value is not None:
            row |= {
                "conf": round(float(value.confidence), 2),
                "input": to_jsonb(value.raw),
                "output": to_jsonb(value.value),
                "success": True,
                "error": None,
            }
        elif result is not None:
            row["error"] = _field_error(result, f)
        else:
            row["error"] = (o.error or "failed")[:2000]
        rows.append(row)
    return rows


def record_outcomes(session: Session, outcomes: Sequence[LookupOutcome], attempts: int) -> Next:
    """Record a batch of lookups in a handful of statements, whatever the batch size: lock the
    still-pending ones (job order, so concurrent batches cannot deadlock), store every raw
    response, one transformation per field, close the lookups, then advance their jobs.

    A lookup that is no longer pending (another delivery recorded it) is skipped. The journal
    rows of every given lookup are deleted in the same transaction.
    """
    if not outcomes:
        return Next()
    keys = sorted({(o.li.job_id, o.li.provider) for o in outcomes})
    # Journaled answers (pipeline.lookups.journal) are recorded now: their rows go with this
    # transaction (also those of lookups another delivery recorded first).
    journal.forget(session, keys)
    pending = {
        (r[0], r[1])
        for r in session.execute(
            _LOCK_PENDING_SQL,
            {"jobs": [k[0] for k in keys], "providers": [k[1] for k in keys]},
        )
    }
    todo: dict[tuple[str, str], LookupOutcome] = {}
    for o in outcomes:
        key = (o.li.job_id, o.li.provider)
        if key in pending and key not in todo:
            todo[key] = o
    responses: list[dict[str, Any]] = []
    transformations: list[dict[str, Any]] = []
    closes: list[dict[str, Any]] = []
    for o in todo.values():
        li = o.li
        raw = o.result.responses if o.result is not None else o.responses
        calls = sum(r.calls for r in raw)
        cost = li.cost_per_call * calls
        responses += _response_rows(li, raw)
        transformations += _transformation_rows(o, raw, attempts, cost)
        closes.append(
            {
                "status": o.result.status if o.result is not None else o.status,
                "attempts": attempts,
                "calls": calls,
                "cost": cost,
                "ms": o.latency_ms if o.result is not None else None,
                "error": None if o.result is not None else (o.error or "failed")[:2000],
                "job": li.job_id,
                "provider": li.provider,
            }
        )
    for statement, rows in (
        (_RESPONSE, responses),
        (_TRANSFORMATION, transformations),
        (_CLOSE, closes),
    ):
        statement.run(session, rows)
    return advance_many(session, sorted({job for job, _ in todo}))


# Ids as text and confidence as float8 are converted by PostgreSQL, not row by row in Python.
# ``{value}`` is the JSONB value for a merge, or only whether there is one: deciding which fields
# are met (``next_lookups``) needs no value, and decoding every answer's JSON each round was the
# largest part of a fan-in.
_OUTCOMES_SELECT = """
    SELECT t.run_id::text AS run_id, t.bronze_id::text AS bronze_id, {id} AS id,
           t.provider_used, t.metadata_field, {value} AS output_value,
           t.provider_confidence::float8 AS provider_confidence, t.success
    FROM enrichment_transformations t
    JOIN unnest(CAST(:runs AS uuid[]), CAST(:bronzes AS uuid[])) AS k(run_id, bronze_id)
      ON k.run_id = t.run_id AND k.bronze_id = t.bronze_id
    WHERE t.transformation_type = 'enrichment'
    ORDER BY t.created_at, t.id
    """
OutcomeRead = Literal["merge", "presence"]
_OUTCOMES_SQL: dict[str, Any] = {
    "merge": text(_OUTCOMES_SELECT.format(id="t.id", value="t.output_value")),
    "presence": text(
        _OUTCOMES_SELECT.format(
            id="NULL::uuid",
            value="(t.output_value IS NOT NULL AND jsonb_typeof(t.output_value) <> 'null')",
        )
    ),
}


def outcomes_by_job(
    session: Session, keys: Sequence[tuple[str, str]], *, read: OutcomeRead = "merge"
) -> dict[tuple[str, str], list[Outcome]]:
    """Every provider's field outcomes for many (run id, bronze id) pairs, in one query.

    ``read="presence"`` reads only whether each outcome has a value (``value`` is True or None,
    no transformation id): enough for :func:`next_lookups`, not for a merge.
    """
    values = read != "presence"
    found: dict[tuple[str, str], list[Outcome]] = {}
    if not keys:
        return found
    unique = list(dict.fromkeys(keys))
    rows = session.execute(
        _OUTCOMES_SQL[read],
        {"runs": [k[0] for k in unique], "bronzes": [k[1] for k in unique]},
    )
    for run_id, bronze_id, t_id, provider, field_name, value, confidence, success in rows:
        found.setdefault((run_id, bronze_id), []).append(
            Outcome(provider, field_name, value if values else (value or None), confidence,
                    success, t_id)
        )  # fmt: skip
    return found


def job_outcomes(session: Session, run_id: str, bronze_id: str) -> list[Outcome]:
    """Every provider's field outcome for a job, from ``enrichment_transformations``."""
    return outcomes_by_job(session, [(str(run_id), str(bronze_id))]).get(
        (str(run_id), str(bronze_id)), []
    )


def planned_fields(
    plan: Plan, fields: Sequence[str] | None, reused: Sequence[str] | None
) -> Sequence[str] | None:
    """The fields a job's rounds plan: all (or the job's ``fields``) minus those it reuses
    from its silver track (issue 17, ``pipeline.identity_first``)."""
    if not reused:
        return fields
    return [f for f in (fields if fields is not None else plan.rules) if f not in set(reused)]


def advance_many(session: Session, job_ids: Sequence[str]) -> Next:
    """Fan-in for a batch: each job with no pending lookup gets its next round or goes to merge.

    Jobs are locked in id order (every caller passes the same order, so no deadlock); the
    lookups, outcomes and plans of all of them are read in three queries.
    """
    if not job_ids:
        return Next()
    ids = sorted(set(job_ids))
    jobs = session.execute(
        text(
            "SELECT id::text AS id, run_id::text AS run_id, bronze_track_id::text AS bronze_id, "
            "status, round, fields, reused_fields FROM enrichment_jobs "
            "WHERE id = ANY(CAST(:ids AS uuid[])) "
            "ORDER BY id FOR NO KEY UPDATE"
        ),
        {"ids": ids},
    ).all()
    open_jobs = [j for j in jobs if j.status == "enriching"]
    if not open_jobs:
        return Next()
    asked: dict[str, list[str]] = {}
    busy: set[str] = set()
    for job_id, provider, status in session.execute(
        text(
            "SELECT job_id::text, provider, status FROM enrichment_lookups "
            "WHERE job_id = ANY(CAST(:ids AS uuid[]))"
        ),
        {"ids": [j.id for j in open_jobs]},
    ):
        asked.setdefault(job_id, []).append(provider)
        if status == "pending":
            busy.add(job_id)
    ready = [j for j in open_jobs if j.id not in busy]
    outcomes = outcomes_by_job(session, [(j.run_id, j.bronze_id) for j in ready], read="presence")
    nxt = Next()
    next_round: list[dict[str, Any]] = []
    bumped: list[str] = []
    for j in ready:
        plan = load_plan(session, j.run_id)
        wanted = next_lookups(
            plan,
            asked.get(j.id, []),
            outcomes.get((j.run_id, j.bronze_id), []),
            planned_fields(plan, j.fields, j.reused_fields),  # reused fields: never asked
        )
        if not wanted:
            nxt.merges.append(j.id)
            continue
        bumped.append(j.id)
        for provider, fields in wanted.items():
            next_round.append(
                {"job": j.id, "provider": provider, "round": j.round + 1, "fields": fields}
            )
            nxt.lookups.setdefault(provider, []).append(j.id)
    if bumped:
        session.execute(
            text(
                "UPDATE enrichment_jobs SET round = round + 1, updated_at = now() "
                "WHERE id = ANY(CAST(:ids AS uuid[]))"
            ),
            {"ids": bumped},
        )
        _PLAN_ROUND.run(session, next_round)
    if nxt.merges:
        session.execute(
            text(
                "UPDATE enrichment_jobs SET status = 'merging', updated_at = now() "
                "WHERE id = ANY(CAST(:ids AS uuid[]))"
            ),
            {"ids": nxt.merges},
        )
    return nxt
