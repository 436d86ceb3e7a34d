"""Lineage of a merge: one ``merge`` transformation per written field (the candidates, the rule
and the winner), ``field_provenance`` with the whole chain, and the job marked ``merged``."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session

from db.bulk import Bulk, to_jsonb, unique_waves
from pipeline.merge.jobs import Choice, MergeJob

__all__ = ["mark_merged", "provenance_rows", "write_lineage", "write_merged"]

Rows = list[dict[str, Any]]

_MERGE_TRANSFORMATION = Bulk.of(
    """
    INSERT INTO enrichment_transformations
        (id, run_id, bronze_id, silver_id, transformation_type, metadata_field, provider_used,
         provider_confidence, input_value, output_value, transformation_rules, success)
    SELECT r.id, r.run, r.bronze, r.silver, 'merge', r.field, r.provider, r.conf,
           r.input, r.output, r.rules, true
    FROM {rows}""",
    [
        ("id", "uuid"), ("run", "uuid"), ("bronze", "uuid"), ("silver", "uuid"),
        ("field", "text"), ("provider", "text"), ("conf", "numeric"), ("input", "jsonb"),
        ("output", "jsonb"), ("rules", "jsonb"),
    ],
)  # fmt: skip

_PROVENANCE = Bulk.of(
    """
    INSERT INTO field_provenance AS fp
        (silver_track_id, metadata_field, original_bronze_id, original_source, original_value,
         transformation_chain, final_transformation_id, current_value, current_confidence,
         current_provider, total_transformations, last_modified_run_id)
    SELECT r.silver, r.field, r.bronze, r.source, r.orig,
           r.chain, r.final, r.value, r.conf,
           r.provider, r.n, r.run
    FROM {rows}
    ON CONFLICT (silver_track_id, metadata_field) DO UPDATE SET
        transformation_chain = fp.transformation_chain || EXCLUDED.transformation_chain,
        final_transformation_id = EXCLUDED.final_transformation_id,
        current_value = EXCLUDED.current_value,
        current_confidence = EXCLUDED.current_confidence,
        current_provider = EXCLUDED.current_provider,
        total_transformations = fp.total_transformations + EXCLUDED.total_transformations,
        last_modified_run_id = EXCLUDED.last_modified_run_id,
        updated_at = now()""",
    [
        ("silver", "uuid"), ("field", "text"), ("bronze", "uuid"), ("source", "text"),
        ("orig", "jsonb"), ("chain", "uuid[]"), ("final", "uuid"), ("value", "jsonb"),
        ("conf", "numeric"), ("provider", "text"), ("n", "int"), ("run", "uuid"),
    ],
)  # fmt: skip

_JOB_MERGED = Bulk.of(
    "UPDATE enrichment_jobs j SET status = 'merged', silver_track_id = r.s, merged_at = now(),"
    " updated_at = now() FROM {rows} WHERE j.id = r.id",
    [("s", "uuid"), ("id", "uuid")],
)


def write_lineage(
    session: Session, merges: Sequence[Mapping[str, Any]], provenance: Sequence[Mapping[str, Any]]
) -> None:
    """Write merge transformation rows and provenance rows (:func:`provenance_rows`), one
    statement per table (more only when a (track, field) repeats)."""
    _MERGE_TRANSFORMATION.run(session, merges)
    # One statement may not upsert a (track, field) twice: a track fed twice in a batch is
    # flushed in between (the track writer), and ``unique_waves`` guards the rest.
    for wave in unique_waves(provenance, lambda r: (r["silver"], r["field"])):
        _PROVENANCE.run(session, wave)


def mark_merged(session: Session, merged: Sequence[Mapping[str, Any]]) -> None:
    """Mark jobs merged into their silver tracks: rows ``{"s": silver id, "id": job id}``."""
    _JOB_MERGED.run(session, merged)


def write_merged(session: Session, silver_id: str, job: MergeJob, choice: Choice) -> None:
    """Write one merged job's merge transformations and provenance, and mark it merged, now (the
    same rows and statements a merge batch writes; a partial replay merges one job at a time)."""
    merges, provenance = provenance_rows(silver_id, job, choice)
    write_lineage(session, merges, provenance)
    mark_merged(session, [{"s": silver_id, "id": job.id}])


def provenance_rows(silver_id: str, job: MergeJob, choice: Choice) -> tuple[Rows, Rows]:
    """The ``merge`` transformation rows and provenance rows of one merged job."""
    values, confidences, winners = choice.values, choice.confidences, choice.winners
    raw = job.raw_json if isinstance(job.raw_json, dict) else {}
    merges: Rows = []
    provenance: Rows = []
    for name, rule in choice.rules.items():
        w = winners.get(name)
        considered = [o for o in choice.outcomes if o.field == name]
        value = values.get(name, w.outcome.value if w else None)
        if isinstance(value, dt.date):
            value = value.isoformat()
        provider = w.outcome.provider if w else f"scraped:{job.source}"
        conf = None if confidences.get(name) is None else round(confidences[name] or 0, 2)
        merge_id = str(uuid.uuid4())
        merges.append(
            {
                "id": merge_id,
                "run": job.run_id,
                "bronze": job.bronze_track_id,
                "silver": silver_id,
                "field": name,
                "provider": provider,
                "conf": conf,
                "input": to_jsonb(
                    [
                        {
                            "provider": o.provider,
                            "value": o.value,
                            "confidence": o.confidence,
                            "success": o.success,
                        }
                        for o in considered
                    ]
                ),
                "output": to_jsonb(value),
                "rules": to_jsonb(rule),
            }
        )
        chain = [str(o.transformation_id) for o in considered if o.transformation_id]
        chain.append(merge_id)
        provenance.append(
            {
                "silver": silver_id,
                "field": name,
                "bronze": job.bronze_track_id,
                "source": job.source,
                "orig": to_jsonb(raw.get(name)),
                "chain": chain,
                "final": merge_id,
                "value": to_jsonb(value),
                "conf": conf,
                "provider": provider,
                "n": len(chain),
                "run": job.run_id,
            }
        )
    return merges, provenance
