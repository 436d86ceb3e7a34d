"""A lookup's input, read from the database before the (slow) provider call.

:func:`lookup_inputs` reads a batch of pending lookups' inputs in two queries: the bronze row's
names and provider ids as the query (:func:`query_from_bronze`), plus what providers of earlier
rounds learned (:func:`with_learned_ids`: an ISRC, a provider id), and the run's price per call.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from pipeline.lookups.outcome import LookupInput
from pipeline.matching import TrackQuery
from pipeline.normalise.text import clean_scraped
from pipeline.runs import run_snapshot
from pipeline.waterfall import Outcome

__all__ = ["LEARN_MIN", "PENDING_BY_KEY", "lookup_inputs", "query_from_bronze", "with_learned_ids"]

#: An id learned in an earlier round is reused only from a confident match.
LEARN_MIN = 0.85


def query_from_bronze(row: Any) -> TrackQuery:
    raw = row.raw_json if isinstance(row.raw_json, dict) else {}
    ids = {
        k[: -len("_id")]: str(v)
        for k, v in raw.items()
        if k.endswith("_id") and isinstance(v, str | int) and k != "source_track_id"
    }
    isrc = raw.get("isrc") if isinstance(raw.get("isrc"), str) else None
    duration = raw.get("duration_ms")
    return TrackQuery(
        # bronze keeps names as sent; the lookup (and matching) uses them cleaned
        artist=clean_scraped(row.artist_name) or "",
        title=clean_scraped(row.track_title) or "",
        isrc=isrc,
        duration_ms=duration
        if isinstance(duration, int) and not isinstance(duration, bool)
        else None,
        provider_ids=ids,
    )


def with_learned_ids(query: TrackQuery, outcomes: Sequence[Outcome]) -> TrackQuery:
    """Later rounds know more: an ISRC or a MusicBrainz id found in round one lets AcousticBrainz
    (which looks up by MBID) or an ISRC lookup answer in round two. A provider's own answer for
    its own id replaces the scraped one (which may have been stale and replaced, issue 14)."""
    ids = dict(query.provider_ids)
    isrc = query.isrc
    own: set[str] = set()
    for o in sorted(outcomes, key=lambda o: -(o.confidence or 0)):
        if not o.success or not isinstance(o.value, str) or (o.confidence or 0) < LEARN_MIN:
            continue
        if o.field == "isrc" and isrc is None:
            isrc = o.value
        elif o.field == f"{o.provider}_id" and o.provider not in own:
            ids[o.provider] = o.value
            own.add(o.provider)
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


# Pending lookups are read by primary key, one per asked key (``LATERAL ... OFFSET 0`` keeps the
# planner from flattening it). Pending rows live for seconds, so the statistics of the last
# ANALYZE rarely count them: planned as a join, "status = 'pending'" was answered from the
# partial index ``ix_enrichment_lookups_pending`` by reading EVERY pending lookup of the whole
# pipeline for each batch. In a 10k replay that one statement was most of the database's work,
# and the plan flipped with each ANALYZE (replays of the same 10k ran 72 to 112 tracks/s).
PENDING_BY_KEY = """
    FROM unnest(CAST(:jobs AS uuid[]), CAST(:providers AS text[])) AS k(job_id, provider)
    CROSS JOIN LATERAL (
      SELECT * FROM enrichment_lookups l
      WHERE l.job_id = k.job_id AND l.provider = k.provider OFFSET 0
    ) l
"""

_INPUTS_SQL = text(
    f"""
    SELECT l.job_id::text AS job_id, l.provider, l.fields, l.round, j.run_id, j.bronze_track_id,
           j.replay_mode, b.artist_name, b.track_title, b.raw_json
    {PENDING_BY_KEY}
    JOIN enrichment_jobs j ON j.id = l.job_id
    JOIN bronze_scraped_tracks b ON b.id = j.bronze_track_id
    WHERE l.status = 'pending'
    """
)


# Only what providers of EARLIER rounds found: lookups of one round run at the same time on
# different queues, so learning from a same-round answer depended on which finished first (a
# race that also left a stored replay unable to repeat the request: issue found by
# test_waterfall_change_applies_to_the_next_run_without_restart failing now and then).
_LEARNED_SQL = text(
    """
    SELECT k.job_id::text AS job_id, t.provider_used, t.metadata_field, t.output_value,
           t.provider_confidence::float8 AS provider_confidence, t.success
    FROM unnest(CAST(:jobs AS uuid[]), CAST(:rounds AS int[])) AS k(job_id, round)
    JOIN enrichment_jobs j ON j.id = k.job_id
    JOIN enrichment_lookups l ON l.job_id = j.id AND l.round < k.round
    JOIN enrichment_transformations t
      ON t.run_id = j.run_id AND t.bronze_id = j.bronze_track_id AND t.provider_used = l.provider
    WHERE t.transformation_type = 'enrichment' AND t.success
      AND (t.metadata_field = 'isrc' OR right(t.metadata_field, 3) = '_id')
    ORDER BY t.created_at, t.id
    """
)


def _learned(session: Session, lookups: Sequence[tuple[str, int]]) -> dict[str, list[Outcome]]:
    """job id -> the ISRC and provider-id outcomes of providers asked in rounds before the
    given round of that job's lookup."""
    found: dict[str, list[Outcome]] = {}
    if not lookups:
        return found
    rows = session.execute(
        _LEARNED_SQL, {"jobs": [j for j, _ in lookups], "rounds": [r for _, r in lookups]}
    )
    for job_id, provider, field_name, value, confidence, success in rows:
        found.setdefault(job_id, []).append(
            Outcome(provider, field_name, value, confidence, success)
        )
    return found


def lookup_inputs(session: Session, job_ids: Sequence[str], provider: str) -> list[LookupInput]:
    """The pending lookups' inputs for a batch of jobs, in ``job_ids`` order, in two queries.

    Jobs whose lookup is already done (a redelivered message) are left out.
    """
    if not job_ids:
        return []
    rows = {
        r.job_id: r
        for r in session.execute(
            _INPUTS_SQL, {"jobs": list(job_ids), "providers": [provider] * len(job_ids)}
        )
    }
    known = _learned(session, [(job_id, r.round) for job_id, r in rows.items()])
    inputs = []
    for job_id in dict.fromkeys(str(j) for j in job_ids):
        row = rows.get(job_id)
        if row is None:
            continue
        run_id, bronze_id = str(row.run_id), str(row.bronze_track_id)
        inputs.append(
            LookupInput(
                job_id=job_id,
                run_id=run_id,
                bronze_id=bronze_id,
                provider=provider,
                fields=list(row.fields),
                query=with_learned_ids(query_from_bronze(row), known.get(job_id, [])),
                replay_mode=row.replay_mode,
                cost_per_call=_run_costs(session, run_id).get(provider, Decimal(0)),
            )
        )
    return inputs
