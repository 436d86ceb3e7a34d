"""Identity before fan-out (issue 17): a sighting of a known track asks only for what is stale.

Before :func:`pipeline.enrich.create_jobs` plans round one, each bronze row is matched to silver
with merge's own identity rules (``pipeline.merge.find_silver``: ISRC, then provider ids, then
the normalised artist+title ``identity_key``; read only, no lock). Then:

* a **known** track plans lookups only for its fields that are not fresh under the run's
  configuration (``pipeline.freshness``), plus its own source's scraper provider when the
  waterfall has one (free: it answers from bronze). The fresh fields are written on the job
  (``reused_fields``) with the silver track (``reuse_silver_id``); later rounds never plan them,
  and merge links the row to that track (``silver_track_sightings``, playlist membership, gold
  appearances) and writes one reuse row per reused field. Fully fresh and no scraper: the job
  goes straight to merge, no lookup at all.
* a **new** track takes the single flight of its identity key (``pipeline.singleflight``): the
  first sighting makes the lookups, later ones wait for it in the database.

Replays, ``--force``, partial replays (``fields``) and time-travel (``config_run_id``) plan
exactly as before: they exist to ask again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from db.bulk import Bulk
from pipeline.enrich import _PLAN_ROUND, Next
from pipeline.freshness import fresh_fields
from pipeline.lookups.inputs import query_from_bronze
from pipeline.matching import identity_key
from pipeline.merge import IDENTITY_IDS, find_silver
from pipeline.scraper_providers import SCRAPER_PROVIDERS
from pipeline.tracklist import is_unidentified
from pipeline.waterfall import Plan, next_lookups

__all__ = ["Sighting", "bronze_identity", "plan_known", "plan_sightings"]


@dataclass(frozen=True)
class Sighting:
    """One bronze row's job and what identifies it."""

    job_id: str
    bronze_id: str
    source: str
    ikey: str
    ids: dict[str, str]


_BRONZE_SQL = text(
    "SELECT id::text AS id, source, artist_name, track_title, raw_json "
    "FROM bronze_scraped_tracks WHERE id = ANY(CAST(:ids AS uuid[]))"
)


def bronze_identity(row: Any) -> tuple[str, dict[str, str]] | None:
    """(identity key, ISRC and provider ids as silver columns) of a bronze row, None for an
    unidentified one (nothing to match)."""
    if is_unidentified(row.artist_name, row.track_title):
        return None
    try:
        ikey = identity_key(row.artist_name or "", row.track_title or "")
    except (TypeError, ValueError):
        return None
    query = query_from_bronze(row)
    ids = {f"{p}_id": v for p, v in query.provider_ids.items() if f"{p}_id" in IDENTITY_IDS}
    if query.isrc:
        ids["isrc"] = query.isrc
    return ikey, ids


_MARK_REUSE = Bulk.of(
    "UPDATE enrichment_jobs j SET reused_fields = r.fields, reuse_silver_id = r.silver "
    "FROM {rows} WHERE j.id = r.job",
    [("job", "uuid"), ("fields", "text[]"), ("silver", "uuid")],
)


def plan_known(
    session: Session, run_id: str, plan: Plan, matched: Mapping[str, tuple[str, str]]
) -> Next:
    """Plan the jobs of known tracks: ``job id -> (silver id, bronze source)``. Marks their
    reused fields and silver track, plans round one for stale fields (and the own source's
    scraper provider), and sends fully fresh ones to merge."""
    nxt = Next()
    if not matched:
        return nxt
    fresh = fresh_fields(session, run_id, [s for s, _ in matched.values()])
    marks: list[dict[str, Any]] = []
    rounds: list[dict[str, Any]] = []
    for job_id, (silver_id, source) in matched.items():
        reused = sorted(fresh.get(silver_id, set()) & set(plan.rules))
        stale = [f for f in plan.rules if f not in set(reused)]
        wanted = next_lookups(plan, [], [], stale) if stale else {}
        own = plan.fields_for(source) if source in SCRAPER_PROVIDERS else []
        if own:
            wanted[source] = sorted(set(wanted.get(source, [])) | set(own))
        marks.append({"job": job_id, "fields": reused, "silver": silver_id})
        if not wanted:
            nxt.merges.append(job_id)
            continue
        for provider, provider_fields in sorted(wanted.items()):
            rounds.append(
                {"job": job_id, "provider": provider, "round": 1, "fields": provider_fields}
            )
            nxt.lookups.setdefault(provider, []).append(job_id)
    _MARK_REUSE.run(session, marks)
    _PLAN_ROUND.run(session, rounds)
    if nxt.merges:
        session.execute(
            text(
                "UPDATE enrichment_jobs SET status = 'merging', updated_at = now() "
                "WHERE id = ANY(CAST(:ids AS uuid[]))"
            ),
            {"ids": nxt.merges},
        )
    return nxt


def plan_sightings(
    session: Session, run_id: str, plan: Plan, jobs: Mapping[str, str]
) -> tuple[Next, set[str]]:
    """Identity-first planning for new jobs (``bronze id -> job id``) of one run.

    Returns the work to enqueue and the bronze ids it took care of (known tracks and waiting
    sightings). The rest (unidentified rows, first sightings of new tracks: flight leaders) are
    left to the caller's full round one.
    """
    from pipeline.singleflight import join_flights

    if not jobs:
        return Next(), set()
    rows = session.execute(_BRONZE_SQL, {"ids": list(jobs)}).all()
    matched: dict[str, tuple[str, str]] = {}
    new: list[Sighting] = []
    found: dict[tuple[str, tuple[tuple[str, str], ...]], str | None] = {}
    handled: set[str] = set()
    for row in sorted(rows, key=lambda r: jobs[r.id]):
        ident = bronze_identity(row)
        if ident is None:
            continue
        ikey, ids = ident
        key = (ikey, tuple(sorted(ids.items())))
        if key not in found:
            hit = find_silver(session, dict(ids), ikey, lock=False)
            found[key] = str(hit.id) if hit is not None else None
        silver_id = found[key]
        if silver_id is not None:
            matched[jobs[row.id]] = (silver_id, row.source)
            handled.add(row.id)
        else:
            new.append(Sighting(jobs[row.id], row.id, row.source, ikey, ids))
    nxt = plan_known(session, run_id, plan, matched)
    waiting = join_flights(session, new)
    handled |= {s.bronze_id for s in new if s.job_id in waiting}
    return nxt, handled
