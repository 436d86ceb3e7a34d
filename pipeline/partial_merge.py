"""A partial merge: only a replay's ``fields_to_replay``, into the silver track it already feeds.

A full merge re-derives the track's identity from the merged fields (and writes the scraped
names as a fallback); a partial replay must change nothing but what was asked. So
:func:`merge_fields` resolves just the job's fields (``pipeline.merge.resolve_fields``, as a
full merge does), writes those columns, and re-scores the whole track with the scoring a merge
uses (``pipeline.quality.assess`` over the plan's required and optional fields), so restoring a
missing required field brings the track back to gold. Provenance and the job's status are
written by ``pipeline.merge.write_merged``, the statements a merge batch uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pipeline.enrich import job_outcomes, to_jsonb
from pipeline.errors import ReplayError
from pipeline.merge import (
    TRACK_COLUMNS,
    MergeResult,
    merge_job,
    resolve_fields,
    silver_ids_for_bronze,
    write_merged,
)
from pipeline.quality import assess
from pipeline.runs import finish_run_if_done, load_plan

__all__ = ["merge_fields"]


def merge_fields(session: Session, job_id: str) -> MergeResult:
    """Merge only the job's ``fields`` into the silver track its bronze row already feeds.

    A full merge would re-derive identity from the replayed fields alone (and write the scraped
    names as a fallback); a partial replay must change nothing but what was asked.
    """
    job = session.execute(
        text(
            """SELECT j.id, j.run_id, j.bronze_track_id, j.status, j.fields, j.silver_track_id,
                      b.source, b.raw_json
               FROM enrichment_jobs j JOIN bronze_scraped_tracks b ON b.id = j.bronze_track_id
               WHERE j.id = :id FOR NO KEY UPDATE OF j"""
        ),
        {"id": job_id},
    ).first()
    if job is None:
        return MergeResult()
    if job.status == "merged":
        return MergeResult(silver_track_id=str(job.silver_track_id), already_merged=True)
    silver_id = session.execute(
        text(
            "SELECT silver_track_id FROM enrichment_jobs WHERE bronze_track_id = :b "
            "AND status = 'merged' AND silver_track_id IS NOT NULL AND id <> :j "
            "ORDER BY merged_at DESC LIMIT 1"
        ),
        {"b": str(job.bronze_track_id), "j": job_id},
    ).scalar_one_or_none()
    if silver_id is None:
        found = silver_ids_for_bronze(session, [job.bronze_track_id])
        silver_id = found[0] if found else None
    if silver_id is None:  # never merged before: a full merge is the only sensible thing
        return merge_job(session, job_id, override_fields=True)
    silver_id = str(silver_id)
    run_id = str(job.run_id)
    plan = load_plan(session, run_id)
    outcomes = job_outcomes(session, run_id, str(job.bronze_track_id))
    resolved = resolve_fields(plan, outcomes, job.fields or [], run_id)
    rules = {name: info | {"partial_replay": True} for name, info in resolved.rules.items()}
    values, confidences = resolved.values | resolved.extra, resolved.confidences
    cols = {c: v for c, v in values.items() if c in TRACK_COLUMNS}
    sets = "".join(f"{c} = :{c}, " for c in cols)
    conf = {k: v for k, v in confidences.items() if v is not None}
    quality = _rescore(session, plan, silver_id, cols, conf, set(job.fields or []), resolved)
    try:
        with session.begin_nested():
            session.execute(
                text(
                    f"UPDATE silver_enriched_tracks SET {sets}"
                    "field_confidence = field_confidence || CAST(:conf AS jsonb), "
                    "enrichment_metadata = jsonb_set(coalesce(enrichment_metadata, '{}'), "
                    "'{extra}', coalesce(enrichment_metadata -> 'extra', '{}') "
                    "|| CAST(:extra AS jsonb)), enrichment_run_id = :run, enriched_at = now(), "
                    "data_quality_score = :q_score, validation_status = :q_status, "
                    "validation_errors = CAST(:q_errors AS jsonb), "
                    "validation_warnings = CAST(:q_warnings AS jsonb), validated_at = now() "
                    "WHERE id = :id"
                ),
                cols
                | quality
                | {
                    "conf": to_jsonb(conf),
                    "extra": to_jsonb(resolved.extra),
                    "run": run_id,
                    "id": silver_id,
                },
            )
    except IntegrityError as exc:  # a replayed id already belongs to another silver track
        msg = f"replayed values conflict with another silver track: {exc.orig}"
        raise ReplayError(msg) from exc
    write_merged(session, silver_id, job, values, confidences, resolved.winners, outcomes, rules)
    return MergeResult(silver_track_id=silver_id, run_finished=finish_run_if_done(session, run_id))


def _rescore(
    session: Session,
    plan: Any,
    silver_id: str,
    cols: Mapping[str, Any],
    conf: Mapping[str, float],
    replayed: set[str],
    resolved: Any,
) -> dict[str, Any]:
    """The quality columns of the track as the partial write leaves it (``pipeline.quality``'s
    ``assess``, with the plan's required and optional fields, exactly as a full merge scores).

    Judged on the whole track: its other columns and confidences as stored, the replayed ones
    as written. Warnings of fields not replayed stay; the replayed fields' warnings are the
    replay's own. The row is locked here so a concurrent merge cannot change what was judged.
    """
    row = session.execute(
        text(
            f"SELECT {', '.join(TRACK_COLUMNS)}, field_confidence, validation_warnings "
            "FROM silver_enriched_tracks WHERE id = :id FOR NO KEY UPDATE"
        ),
        {"id": silver_id},
    ).one()
    current = {c: row._mapping[c] for c in TRACK_COLUMNS} | dict(cols)
    known = {k: None if v is None else float(v) for k, v in (row.field_confidence or {}).items()}
    warnings = [
        w for w in (row.validation_warnings or []) if w.get("field") not in replayed
    ] + list(resolved.warnings)
    required = plan.required_fields()
    optional = [f for f in plan.rules if f not in required]
    q = assess(current, known | dict(conf), required, optional, warnings)
    return {
        "q_score": q.score,
        "q_status": q.status,
        "q_errors": to_jsonb(q.errors),
        "q_warnings": to_jsonb(warnings),
    }
