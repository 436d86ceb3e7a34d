"""Merge a batch of jobs into silver in one transaction: read, decide in memory, lock, write.

Reads (jobs, outcomes) are one query each for the whole batch; winners are decided in memory
(:func:`prepare`); then every advisory lock the batch needs (track identity, provider ids, credited
artists) is taken in ONE statement in one global order, so concurrent batches can never deadlock
on each other, and the writes follow through the silver writers. Idempotent: a merged job is not
merged twice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from pipeline.enrich import outcomes_by_job
from pipeline.freshness import after_merge
from pipeline.matching import identity_key, split_artists
from pipeline.merge.artists import prefetch_artists
from pipeline.merge.identity import advisory_locks
from pipeline.merge.jobs import MergeJob, MergeResult, PreparedJob
from pipeline.merge.resolve import resolve_fields
from pipeline.merge.tracks import PendingWrites, write_track
from pipeline.normalise.text import clean_scraped
from pipeline.runs import finish_run_if_done, load_plan
from pipeline.tracklist import is_unidentified
from pipeline.waterfall import Outcome

__all__ = ["merge_batch", "merge_job", "prepare"]

log = logging.getLogger("songnodes.merge")

_JOBS_SQL = text(
    """SELECT j.id::text AS id, j.run_id, j.bronze_track_id, j.status, j.fields,
              j.silver_track_id, b.source, b.artist_name, b.track_title, b.raw_json,
              b.playlist_id, j.replay_mode, j.reused_fields, j.reuse_silver_id
       FROM enrichment_jobs j JOIN bronze_scraped_tracks b ON b.id = j.bronze_track_id
       WHERE j.id = ANY(CAST(:ids AS uuid[]))
       ORDER BY j.id
       FOR NO KEY UPDATE OF j"""
)


def prepare(session: Session, job: MergeJob, outcomes: list[Outcome]) -> PreparedJob:
    """Pick every field's winner and the values to write (no database writes)."""
    run_id = job.run_id
    plan = load_plan(session, run_id)
    wanted = set(job.fields) if job.fields else set(plan.rules)
    resolved = resolve_fields(plan, outcomes, wanted, run_id)
    values, confidences, rules = resolved.values, resolved.confidences, resolved.rules
    # Scraped names are the fallback: a track no provider knows keeps what the setlist said.
    scraped_names = (
        ("artist_name", clean_scraped(job.artist_name)),  # bronze keeps them as sent
        ("track_title", clean_scraped(job.track_title)),
    )
    for col, scraped in scraped_names:
        if not values.get(col):
            values[col] = scraped
            confidences[col] = None
            rules[col] = {
                "reason": f"no provider answer; scraped value from {job.source}",
                "fallback": True,
                "config_run_id": run_id,
            }
    ikey = identity_key(values["artist_name"], values["track_title"])
    artist_names = split_artists(values["artist_name"]) or [values["artist_name"]]
    reused = set(job.reused_fields or ())
    for col in ("artist_name", "track_title"):
        # Issue 17: a reused name keeps the track's value (and its artists): the scraped
        # fallback is for identity only, not written, and the field gets its reuse row.
        if col in reused and col not in resolved.winners and job.reuse_silver_id is not None:
            values.pop(col, None)
            confidences.pop(col, None)
            rules.pop(col, None)
            if col == "artist_name":
                artist_names = []
    return PreparedJob(
        job=job,
        plan=plan,
        outcomes=outcomes,
        winners=resolved.winners,
        values=values,
        confidences=confidences,
        metadata=resolved.metadata,
        warnings=resolved.warnings,
        rules=rules,
        ikey=ikey,
        artist_names=artist_names,
    )


def merge_batch(
    session: Session, job_ids: Sequence[str], *, override_fields: bool = False
) -> list[MergeResult]:
    """Merge a batch of jobs into silver in one transaction (see module docstring).

    Each job writes inside its own savepoint: a job that cannot be merged is marked ``failed``
    with its error and the others go on. ``override_fields``: a replay's chosen fields replace
    the current values even when less confident. Results come back in ``job_ids`` order.
    """
    ids = list(dict.fromkeys(str(j) for j in job_ids))
    if not ids:
        return []
    jobs = {j.id: j for j in map(MergeJob.from_row, session.execute(_JOBS_SQL, {"ids": ids}))}
    silver: dict[str, str | None] = {}
    todo: list[MergeJob] = []
    unidentified: list[str] = []
    for job in jobs.values():
        if job.status == "merged":
            silver[job.id] = job.silver_track_id
        elif is_unidentified(job.artist_name, job.track_title):
            unidentified.append(job.id)
        else:
            todo.append(job)
    known = outcomes_by_job(session, [(j.run_id, j.bronze_track_id) for j in todo])
    prepared = [prepare(session, j, known.get((j.run_id, j.bronze_track_id), [])) for j in todo]
    # Artists that exist before the batch, resolved in one query before locking (see
    # ``PreparedJob.lock_keys``). One created by a job of this batch is not cached: that job's
    # savepoint may still roll back.
    artists = prefetch_artists(session, [n for p in prepared for n in p.artist_names])
    advisory_locks(session, sorted({k for p in prepared for k in p.lock_keys(artists)}))
    try:
        # The batch in one savepoint, none per job: a savepoint pair costs about as much client
        # CPU as the job's own statements. Any job failing sends the batch down the careful path.
        with session.begin_nested():
            pending = PendingWrites()
            for p in prepared:
                silver[p.job.id] = write_track(
                    session, p, override_fields, pending, artists, careful=False
                )
            pending.flush(session)
    except OperationalError:
        raise  # deadlock, lost connection: the whole batch is retried
    except Exception:
        for p in prepared:
            silver[p.job.id] = None
        _merge_carefully(session, prepared, silver, override_fields, artists)
    # Issue 17: looked-up fields become checks, reused fields get their reuse row.
    after_merge(
        session,
        [(p.job, p.plan, sid, frozenset(p.rules)) for p in prepared if (sid := silver[p.job.id])],
    )
    if unidentified:
        session.execute(
            text(
                "UPDATE enrichment_jobs SET status = 'merged', merged_at = now(), "
                "updated_at = now() WHERE id = ANY(CAST(:ids AS uuid[]))"
            ),
            {"ids": unidentified},
        )
    # Once per run, last: the run row lock is then held only until this batch commits.
    finished = {
        run_id
        for run_id in sorted({j.run_id for j in jobs.values() if j.status != "merged"})
        if finish_run_if_done(session, run_id)
    }
    linked = {p.job.id for p in prepared if p.linked_only}
    return [_result(jobs.get(i), silver, finished, linked) for i in ids]


def _result(
    job: MergeJob | None, silver: dict[str, str | None], finished: set[str], linked: set[str]
) -> MergeResult:
    if job is None:
        return MergeResult()
    return MergeResult(
        silver_track_id=silver.get(job.id),
        bronze_playlist_ids=[job.playlist_id] if job.playlist_id else [],
        run_finished=job.run_id in finished,
        already_merged=job.status == "merged",
        linked_only=job.id in linked,
    )


def _merge_carefully(
    session: Session,
    prepared: Sequence[PreparedJob],
    silver: dict[str, str | None],
    override_fields: bool,
    artists: dict[str, str],
) -> None:
    """Each job in its own savepoint: one that cannot be merged ends ``failed`` with its error
    and the others go on."""
    pending = PendingWrites()
    for p in prepared:
        try:
            with session.begin_nested():
                silver[p.job.id] = write_track(session, p, override_fields, pending, artists)
        except OperationalError:
            raise  # deadlock, lost connection: the whole batch is retried
        except Exception as exc:
            log.exception("merge of job %s failed", p.job.id)
            session.execute(
                text(
                    "UPDATE enrichment_jobs SET status = 'failed', last_error = :e, "
                    "updated_at = now() WHERE id = :id"
                ),
                {"e": f"merge failed: {type(exc).__name__}: {exc}"[:2000], "id": p.job.id},
            )
        # Flushed after each job, outside its savepoint: a job that fails must not roll back
        # an earlier job's provenance (``write_track`` flushes inside its savepoint when it
        # meets a track an earlier job fed).
        pending.flush(session)


def merge_job(session: Session, job_id: str, *, override_fields: bool = False) -> MergeResult:
    """Merge one job into silver (see :func:`merge_batch`)."""
    return merge_batch(session, [job_id], override_fields=override_fields)[0]
