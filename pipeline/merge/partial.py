"""A partial merge: only a replay's ``fields_to_replay``, into the silver track it already feeds.

A full merge re-derives the track's identity from the merged fields (and writes the scraped
names as a fallback); a partial replay must change nothing but what was asked. So
:func:`merge_fields` resolves just the job's fields (:func:`~pipeline.merge.resolve.resolve_fields`,
as a full merge does) and hands them to the track writer's partial mode
(:func:`~pipeline.merge.tracks.write_fields`: those columns, and the whole track re-scored as a
merge scores it, so restoring a missing required field brings the track back to gold).
Provenance and the job's status are written by :func:`~pipeline.merge.lineage.write_merged`, the
statements a merge batch uses.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from pipeline.enrich import job_outcomes
from pipeline.merge.batch import merge_job
from pipeline.merge.identity import silver_ids_for_bronze
from pipeline.merge.jobs import Choice, MergeJob, MergeResult
from pipeline.merge.lineage import write_merged
from pipeline.merge.resolve import resolve_fields
from pipeline.merge.tracks import write_fields
from pipeline.runs import finish_run_if_done, load_plan

__all__ = ["merge_fields"]


def merge_fields(session: Session, job_id: str) -> MergeResult:
    """Merge only the job's ``fields`` into the silver track its bronze row already feeds (a
    full merge when it never fed one). A replayed id another track owns raises ``ReplayError``.
    """
    row = session.execute(
        text(
            """SELECT j.id, j.run_id, j.bronze_track_id, j.status, j.fields, j.silver_track_id,
                      b.source, b.raw_json
               FROM enrichment_jobs j JOIN bronze_scraped_tracks b ON b.id = j.bronze_track_id
               WHERE j.id = :id FOR NO KEY UPDATE OF j"""
        ),
        {"id": job_id},
    ).first()
    if row is None:
        return MergeResult()
    job = MergeJob.from_row(row)
    if job.status == "merged":
        return MergeResult(silver_track_id=job.silver_track_id, already_merged=True)
    silver_id = session.execute(
        text(
            "SELECT silver_track_id FROM enrichment_jobs WHERE bronze_track_id = :b "
            "AND status = 'merged' AND silver_track_id IS NOT NULL AND id <> :j "
            "ORDER BY merged_at DESC LIMIT 1"
        ),
        {"b": job.bronze_track_id, "j": job_id},
    ).scalar_one_or_none()
    if silver_id is None:
        found = silver_ids_for_bronze(session, [job.bronze_track_id])
        silver_id = found[0] if found else None
    if silver_id is None:  # never merged before: a full merge is the only sensible thing
        return merge_job(session, job_id, override_fields=True)
    silver_id = str(silver_id)
    run_id = job.run_id
    plan = load_plan(session, run_id)
    outcomes = job_outcomes(session, run_id, job.bronze_track_id)
    resolved = resolve_fields(plan, outcomes, job.fields or [], run_id)
    write_fields(session, silver_id, plan, resolved, job.fields or [], run_id)
    choice = Choice(
        values=resolved.values | resolved.extra,
        confidences=resolved.confidences,
        winners=resolved.winners,
        outcomes=outcomes,
        rules={name: info | {"partial_replay": True} for name, info in resolved.rules.items()},
    )
    write_merged(session, silver_id, job, choice)
    return MergeResult(silver_track_id=silver_id, run_finished=finish_run_if_done(session, run_id))
