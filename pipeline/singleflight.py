"""Single flight (issue 17): many sightings of one new track cause one set of lookups.

The first job to see a new identity key takes its row in ``enrichment_flights`` (the leader) and
fans out as usual; a later sighting (in the same batch or another worker's) finds the row and
waits: its job stays ``enriching`` with ``waits_for`` = the leader and no lookup. No lock is held
across HTTP: the flight is a committed row, taken with ``INSERT ... ON CONFLICT DO NOTHING`` in
the ingest transaction (keys in sorted order, so two batches cannot deadlock), and the lookups
run after commit exactly as before (redelivery, the sweeper and a killed worker behave as they
do for any job).

When the leader's merge commits (:func:`release`, in the merge transaction), its flight row goes
and its followers are planned as sightings of the now known silver track (``plan_known``): they
reuse its fresh fields and merge. A leader that failed releases its followers to plan afresh
(one of them becomes the next leader). :func:`release_orphans` (run by the re-enrichment beat)
releases followers whose leader ended without releasing them (its run reaped, a lost merge).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from pipeline.enrich import Next
from pipeline.runs import load_plan

__all__ = ["join_flights", "release", "release_orphans"]


def join_flights(session: Session, sightings: Sequence[Any]) -> set[str]:
    """Take or join the flight of each new sighting's identity key; returns the job ids that
    wait for another job (the first sighting of each key in this batch that took the flight
    leads and is planned by the caller)."""
    if not sightings:
        return set()
    first: dict[str, str] = {}
    for s in sightings:
        first.setdefault(s.ikey, s.job_id)
    keys = sorted(first)
    # A flight whose leader is done but was not released (a reaped run) is stale: drop it.
    session.execute(
        text(
            "DELETE FROM enrichment_flights f USING enrichment_jobs j "
            "WHERE f.identity_key = ANY(CAST(:k AS text[])) AND j.id = f.leader_job_id "
            "AND j.status IN ('merged', 'failed')"
        ),
        {"k": keys},
    )
    leaders: dict[str, str] = {}
    missing = keys
    for _ in range(3):
        session.execute(
            text(
                "INSERT INTO enrichment_flights (identity_key, leader_job_id) "
                "SELECT k, CAST(j AS uuid) FROM unnest(CAST(:k AS text[]), CAST(:j AS text[])) "
                "AS t(k, j) ORDER BY k ON CONFLICT (identity_key) DO NOTHING"
            ),
            {"k": missing, "j": [first[k] for k in missing]},
        )
        # FOR SHARE: the leader's release deletes its flight row before it reads the followers,
        # so it waits for this transaction to commit and then sees these sightings waiting. A
        # flight released meanwhile is gone (skipped here): the key is claimed again.
        leaders |= dict(
            session.execute(
                text(
                    "SELECT identity_key, leader_job_id::text FROM enrichment_flights "
                    "WHERE identity_key = ANY(CAST(:k AS text[])) ORDER BY identity_key "
                    "FOR SHARE"
                ),
                {"k": missing},
            ).all()
        )
        missing = [k for k in keys if k not in leaders]
        if not missing:
            break
    waits = [
        {"job": s.job_id, "leader": leader}
        for s in sightings
        if (leader := leaders.get(s.ikey)) is not None and leader != s.job_id
    ]
    if waits:
        session.execute(
            text(
                "UPDATE enrichment_jobs j SET waits_for = CAST(w.leader AS uuid), "
                "updated_at = now() FROM unnest(CAST(:jobs AS uuid[]), CAST(:leaders AS text[])) "
                "AS w(job, leader) WHERE j.id = w.job"
            ),
            {"jobs": [w["job"] for w in waits], "leaders": [w["leader"] for w in waits]},
        )
    return {w["job"] for w in waits}


_FOLLOWERS_SQL = """
    SELECT f.id::text AS id, f.run_id::text AS run_id, f.bronze_track_id::text AS bronze_id,
           b.source, l.status AS leader_status, l.silver_track_id::text AS silver_id
    FROM enrichment_jobs f
    JOIN enrichment_jobs l ON l.id = f.waits_for
    JOIN bronze_scraped_tracks b ON b.id = f.bronze_track_id
    WHERE {where} AND f.status = 'enriching' AND l.status IN ('merged', 'failed')
    ORDER BY f.id {limit}
    FOR NO KEY UPDATE OF f
"""


def _release(session: Session, followers: Sequence[Any]) -> Next:
    from pipeline.identity_first import plan_known

    nxt = Next()
    if not followers:
        return nxt
    session.execute(
        text(
            "UPDATE enrichment_jobs SET waits_for = NULL, updated_at = now() "
            "WHERE id = ANY(CAST(:ids AS uuid[]))"
        ),
        {"ids": [f.id for f in followers]},
    )
    known: dict[str, dict[str, tuple[str, str]]] = defaultdict(dict)
    again: dict[str, list[Any]] = defaultdict(list)
    for f in followers:
        if f.leader_status == "merged" and f.silver_id:
            known[f.run_id][f.id] = (f.silver_id, f.source)
        else:
            again[f.run_id].append(f)
    for run_id, matched in sorted(known.items()):
        nxt.extend(plan_known(session, run_id, load_plan(session, run_id), matched))
    for run_id, jobs in sorted(again.items()):
        nxt.extend(_replan(session, run_id, jobs))
    return nxt


def _replan(session: Session, run_id: str, jobs: Sequence[Any]) -> Next:
    """Followers of a leader that failed: planned like new jobs (identity first, then a new
    flight, then a full round one for the new leader)."""
    from pipeline.enrich import _PLAN_ROUND
    from pipeline.identity_first import plan_sightings
    from pipeline.waterfall import next_lookups

    plan = load_plan(session, run_id)
    by_bronze = {j.bronze_id: j.id for j in jobs}
    nxt, handled = plan_sightings(session, run_id, plan, by_bronze)
    first_round = next_lookups(plan, [], [], None)
    rounds = []
    merges = []
    for bronze_id, job_id in by_bronze.items():
        if bronze_id in handled:
            continue
        if not first_round:
            merges.append(job_id)
        for provider, fields in first_round.items():
            rounds.append({"job": job_id, "provider": provider, "round": 1, "fields": fields})
            nxt.lookups.setdefault(provider, []).append(job_id)
    _PLAN_ROUND.run(session, rounds)
    if merges:
        session.execute(
            text(
                "UPDATE enrichment_jobs SET status = 'merging', updated_at = now() "
                "WHERE id = ANY(CAST(:ids AS uuid[]))"
            ),
            {"ids": merges},
        )
        nxt.merges.extend(merges)
    return nxt


def release(session: Session, job_ids: Sequence[str]) -> Next:
    """After a merge batch: end the flights these jobs led and plan their followers (call in
    the merge's transaction; dispatch the result after commit)."""
    ids = sorted({str(j) for j in job_ids})
    if not ids:
        return Next()
    # Deleting the flight rows waits for every sighting joining them to commit (they hold them
    # FOR SHARE), so the next statement, with a new snapshot, sees all their followers.
    session.execute(
        text("DELETE FROM enrichment_flights WHERE leader_job_id = ANY(CAST(:ids AS uuid[]))"),
        {"ids": ids},
    )
    followers = session.execute(
        text(_FOLLOWERS_SQL.format(where="f.waits_for = ANY(CAST(:ids AS uuid[]))", limit="")),
        {"ids": ids},
    ).all()
    return _release(session, followers)


def release_orphans(session: Session, limit: int = 5000) -> Next:
    """Followers whose leader is done but never released them: plan them now."""
    session.execute(
        text(
            "DELETE FROM enrichment_flights f USING enrichment_jobs j "
            "WHERE j.id = f.leader_job_id AND j.status IN ('merged', 'failed')"
        )
    )
    followers = session.execute(
        text(_FOLLOWERS_SQL.format(where="f.waits_for IS NOT NULL", limit=f"LIMIT {int(limit)}"))
    ).all()
    return _release(session, followers)
