"""Re-deriving lost hand-offs from PostgreSQL (issue 20), and keeping failed work there.

Every message the pipeline sends after a commit (a lookup, a merge, a setlist merge, a gold
update, a view refresh, a replay chunk) can die with the broker. None of them carries anything
PostgreSQL does not already know, so each kind has a query here that finds the work still owed
and the sweeper (``tasks.maintenance.sweep_stalled``) sends it again. Re-sending is free: every
task is idempotent and a lookup that is already answered (or leased by the worker asking it) is
never asked again.

A task that finally gives up (retries exhausted) leaves its input in ``failed_work``; the
sweeper re-runs the transient ones (database or broker errors) and an operator the others.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

# What ingest does for a scraped artist; the sweeper's orphan artists go the same way (kept
# importable here, the sweeper's module, where it used to live).
from pipeline.merge import artist_to_silver

__all__ = [
    "VIEWS_MARK",
    "FailedWorkRow",
    "StalledReplay",
    "artist_to_silver",
    "claim_failed_work",
    "lease_expiry_s",
    "lease_lookups",
    "mark",
    "mark_at",
    "orphan_artists",
    "record_failed_work",
    "release_lookups",
    "renew_leases",
    "stalled_playlists",
    "stalled_replays",
    "try_sweep_lock",
    "views_stale",
]

SWEEP_LOCK = "songnodes:sweep"


def try_sweep_lock(session: Session) -> bool:
    """Take the sweep's advisory lock for this transaction, or False if another holds it.

    The sweep and the reaper both take it, so sweeps never overlap and a reap never runs in
    the middle of a sweep (or the other way round). Transaction-scoped: a worker that dies
    mid-sweep releases it with its connection.
    """
    return bool(
        session.execute(
            text("SELECT pg_try_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": SWEEP_LOCK}
        ).scalar_one()
    )


def mark(session: Session, name: str) -> None:
    """Record that ``name`` happened now (``maintenance_marks``)."""
    session.execute(
        text(
            "INSERT INTO maintenance_marks (name, at) VALUES (:n, now()) "
            "ON CONFLICT (name) DO UPDATE SET at = now()"
        ),
        {"n": name},
    )


def mark_at(session: Session, name: str) -> dt.datetime | None:
    at: dt.datetime | None = session.execute(
        text("SELECT at FROM maintenance_marks WHERE name = :n"), {"n": name}
    ).scalar_one_or_none()
    return at


# --- leases: a lookup being asked is not asked again by a duplicate message ---------------------
def lease_lookups(
    session: Session, job_ids: Sequence[str], provider: str, holder: str, seconds: float
) -> set[str]:
    """Lease the still-pending lookups of ``job_ids`` to ``holder`` (a Celery task id) and return
    the jobs leased. A lookup leased by another holder whose lease has not expired is left out:
    a duplicate message (the sweeper re-sent it while the first was still running) never asks
    the provider a second time. The same task id (a redelivery or a retry of the same message)
    takes its own lease over."""
    if not job_ids:
        return set()
    rows = session.execute(
        text("""
            UPDATE enrichment_lookups SET leased_by = :h,
                   leased_until = now() + make_interval(secs => :s)
            WHERE job_id = ANY(CAST(:jobs AS uuid[])) AND provider = :p AND status = 'pending'
              AND (leased_until IS NULL OR leased_until < now() OR leased_by = :h)
            RETURNING job_id::text"""),
        {"jobs": list(job_ids), "p": provider, "h": holder, "s": float(seconds)},
    )
    return {r[0] for r in rows}


def release_lookups(
    session: Session, job_ids: Sequence[str], provider: str, holder: str, seconds: float
) -> None:
    """Keep ``holder``'s lease only ``seconds`` more (its retry's countdown): if that retry
    message is lost, the lease runs out and the sweeper sends the lookup again."""
    if job_ids:
        session.execute(
            text("""
                UPDATE enrichment_lookups SET leased_until = now() + make_interval(secs => :s)
                WHERE job_id = ANY(CAST(:jobs AS uuid[])) AND provider = :p AND leased_by = :h
                  AND status = 'pending'"""),
            {"jobs": list(job_ids), "p": provider, "h": holder, "s": float(seconds)},
        )


def lease_expiry_s(session: Session) -> float | None:
    """Seconds until the last live lease of a pending lookup runs out (None: none is leased).

    After a broker restart a leased lookup may have lost its message (a retry waiting out its
    countdown holds its lease through it); the reconnect sweep must leave it alone while the
    lease runs, and a sweep at this moment re-sends whatever lost its message (leases of
    lookups still being asked are renewed meanwhile and stay out)."""
    value = session.execute(
        text(
            "SELECT extract(epoch FROM max(leased_until) - now()) FROM enrichment_lookups "
            "WHERE status = 'pending' AND leased_until > now()"
        )
    ).scalar_one()
    return None if value is None else float(value)


def renew_leases(
    session: Session, job_ids: Sequence[str], provider: str, holder: str, seconds: float
) -> None:
    """Extend ``holder``'s leases on the still-pending lookups (a heartbeat while it asks)."""
    if job_ids:
        session.execute(
            text("""
                UPDATE enrichment_lookups SET leased_until = now() + make_interval(secs => :s)
                WHERE job_id = ANY(CAST(:jobs AS uuid[])) AND provider = :p AND leased_by = :h
                  AND status = 'pending'"""),
            {"jobs": list(job_ids), "p": provider, "h": holder, "s": float(seconds)},
        )


# --- failed work -------------------------------------------------------------------------------
@dataclass
class FailedWorkRow:
    id: str
    task_name: str
    args: list[Any]
    kwargs: dict[str, Any]


def record_failed_work(
    session: Session,
    task_name: str,
    task_id: str | None,
    args: Sequence[Any],
    kwargs: dict[str, Any],
    error: str,
    transient: bool,
) -> str:
    """Keep a finally failed task's input. The same input failing again after a re-run updates
    its row (so re-runs are counted, not multiplied)."""
    params = {
        "n": task_name,
        "id": task_id,
        "a": json.dumps(list(args), default=str),
        "k": json.dumps(dict(kwargs), default=str),
        "e": error[:4000],
        "t": transient,
    }
    found = session.execute(
        text("""
            UPDATE failed_work SET status = 'failed', error = :e, transient = :t, task_id = :id,
                   updated_at = now()
            WHERE id = (SELECT id FROM failed_work WHERE task_name = :n
                          AND args = CAST(:a AS jsonb) AND kwargs = CAST(:k AS jsonb)
                          AND status IN ('failed', 'rerun')
                        ORDER BY created_at DESC LIMIT 1)
            RETURNING id::text"""),
        params,
    ).scalar_one_or_none()
    if found is not None:
        return str(found)
    return str(
        session.execute(
            text("""
                INSERT INTO failed_work (task_name, task_id, args, kwargs, error, transient)
                VALUES (:n, :id, CAST(:a AS jsonb), CAST(:k AS jsonb), :e, :t)
                RETURNING id::text"""),
            params,
        ).scalar_one()
    )


def claim_failed_work(
    session: Session,
    older_than_s: float,
    max_reruns: int,
    ids: Sequence[str] | None = None,
    limit: int = 500,
) -> list[FailedWorkRow]:
    """Failed work to run again, marked ``rerun``: the given ``ids`` (an operator's choice,
    transient or not), else transient failures older than ``older_than_s`` re-run fewer than
    ``max_reruns`` times."""
    where = (
        "id = ANY(CAST(:ids AS uuid[]))"
        if ids is not None
        else "transient AND reruns < :max AND updated_at < now() - make_interval(secs => :s)"
    )
    rows = session.execute(
        text(f"""
            UPDATE failed_work SET status = 'rerun', reruns = reruns + 1, updated_at = now()
            WHERE id IN (SELECT id FROM failed_work WHERE status = 'failed' AND {where}
                         ORDER BY created_at LIMIT :n FOR UPDATE SKIP LOCKED)
            RETURNING id::text, task_name, args, kwargs"""),
        {"ids": list(ids or []), "max": max_reruns, "s": float(older_than_s), "n": limit},
    )
    return [FailedWorkRow(r[0], r[1], list(r[2]), dict(r[3])) for r in rows]


# --- reconcilers: hand-offs owed, found from the database --------------------------------------
def stalled_playlists(
    session: Session, older_than_s: float, lookback_s: float, limit: int = 1000
) -> list[str]:
    """Setlists whose every track is merged (or failed) but whose silver playlist is missing or
    older than its last track merge: their ``merge_playlist`` message was lost.

    Only setlists that arrived within ``lookback_s`` are looked at (BRIN index on arrival);
    the last merge must be older than ``older_than_s`` so an in-flight message is not raced.
    """
    rows = session.execute(
        text("""
            SELECT bp.id::text FROM bronze_scraped_playlists bp
            CROSS JOIN LATERAL (
                SELECT count(*) AS tracks,
                       count(*) FILTER (WHERE j.done) AS done,
                       max(j.last) AS last
                FROM bronze_scraped_tracks b
                LEFT JOIN LATERAL (
                    SELECT bool_or(x.status IN ('merged', 'failed')) AS done,
                           max(x.updated_at) AS last
                    FROM enrichment_jobs x WHERE x.bronze_track_id = b.id) j ON true
                WHERE b.playlist_id = bp.id) t
            LEFT JOIN silver_enriched_playlists sp ON sp.bronze_id = bp.id
            WHERE bp.created_at > now() - make_interval(secs => :lb)
              AND t.tracks > 0 AND t.done = t.tracks
              AND t.last < now() - make_interval(secs => :s)
              AND (sp.id IS NULL OR sp.enriched_at IS NULL OR sp.enriched_at < t.last)
            ORDER BY bp.created_at LIMIT :n"""),
        {"s": float(older_than_s), "lb": float(lookback_s), "n": limit},
    )
    return [r[0] for r in rows]


VIEWS_MARK = "gold_views_refreshed"


def views_stale(session: Session, older_than_s: float) -> bool:
    """True when gold changed after the last view refresh and the change is older than
    ``older_than_s`` (the debounced ``refresh_views`` message should have run by then)."""
    return bool(
        session.execute(
            text("""
                SELECT greatest(
                    (SELECT max(updated_at) FROM silver_enriched_tracks),
                    (SELECT max(last_analyzed_at) FROM gold_playlist_analytics))
                   > coalesce((SELECT at FROM maintenance_marks WHERE name = :m), '-infinity')
                   AND greatest(
                    (SELECT max(updated_at) FROM silver_enriched_tracks),
                    (SELECT max(last_analyzed_at) FROM gold_playlist_analytics))
                   < now() - make_interval(secs => :s)"""),
            {"m": VIEWS_MARK, "s": float(older_than_s)},
        ).scalar_one()
    )


@dataclass
class StalledReplay:
    run_id: str
    mode: str  # stored | live
    partial: bool
    job_ids: list[str] = field(default_factory=list)


def stalled_replays(
    session: Session, older_than_s: float, limit: int = 5000
) -> list[StalledReplay]:
    """Open jobs of replay runs not touched for ``older_than_s``: their ``replay_jobs`` message
    was lost. Touched here so the next sweep does not send them again before the timeout."""
    rows = session.execute(
        text("""
            WITH picked AS (
                SELECT j.id, j.run_id, coalesce(j.replay_mode, 'stored') AS mode,
                       -- a job planned for some fields only (``create_jobs(fields=...)``) is a
                       -- partial replay whether or not it came through the replay queue
                       (coalesce(cardinality(j.fields), 0) > 0
                        OR coalesce(cardinality(q.fields_to_replay), 0) > 0) AS partial
                FROM enrichment_jobs j
                JOIN enrichment_pipeline_runs r ON r.id = j.run_id
                LEFT JOIN pipeline_replay_queue q ON q.assigned_run_id = r.id
                WHERE r.run_type = 'replay' AND r.run_status = 'running'
                  AND j.status IN ('enriching', 'merging')
                  AND j.updated_at < now() - make_interval(secs => :s)
                ORDER BY j.run_id, j.id LIMIT :n
                FOR UPDATE OF j SKIP LOCKED)
            UPDATE enrichment_jobs j SET updated_at = now() FROM picked p WHERE j.id = p.id
            RETURNING p.run_id::text, p.mode, p.partial, j.id::text"""),
        {"s": float(older_than_s), "n": limit},
    )
    by_run: dict[tuple[str, str, bool], StalledReplay] = {}
    for run_id, mode, partial, job_id in rows:
        key = (run_id, mode, bool(partial))
        by_run.setdefault(key, StalledReplay(run_id, mode, bool(partial))).job_ids.append(job_id)
    return list(by_run.values())


def orphan_artists(
    session: Session, older_than_s: float, lookback_s: float, limit: int = 1000
) -> list[str]:
    """Bronze artists (arrived within ``lookback_s``, older than ``older_than_s``) that no
    silver artist was built from."""
    rows = session.execute(
        text("""
            SELECT b.id::text FROM bronze_scraped_artists b
            WHERE b.created_at > now() - make_interval(secs => :lb)
              AND b.created_at < now() - make_interval(secs => :s)
              AND NOT EXISTS (SELECT 1 FROM silver_enriched_artists s
                              WHERE s.bronze_ids @> ARRAY[b.id])
            ORDER BY b.created_at LIMIT :n"""),
        {"s": float(older_than_s), "lb": float(lookback_s), "n": limit},
    )
    return [r[0] for r in rows]
