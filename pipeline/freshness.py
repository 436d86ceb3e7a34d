"""Freshness per field (issue 17): which answers a silver track already holds, and their lineage.

A *check* (``silver_field_checks``) says when the providers were last asked for one field of one
silver track, in which run, and under which configuration of that field (``field_config_hash``
of the run's snapshot row: slot providers and thresholds, acceptance floor, mode). The SQL
function ``field_check_is_fresh`` decides freshness against a run's snapshot: same configuration
hash and younger than the field's ``fresh_for`` (NULL: for ever). A field asked and not found
counts as checked too: a negative answer is kept for the same lifetime, or every sighting of a
track no provider knows would ask again.

Written after each merge (:func:`after_merge`): the fields the job looked up become checks
(a field one of whose providers failed or was skipped, or that no provider could be asked
about, is not: its answer is unknown, not negative); the fields the job reused get one
``merge`` transformation each with ``transformation_rules.reuse = true`` and "reused from run
R" (none per provider), which
``songnodes trace`` shows beside the merges that chose the value. A stored replay re-reads old
responses and renews no check; a live (``--force``) replay does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.orm import Session

from db.bulk import Bulk
from pipeline.waterfall import Plan

__all__ = ["MergedJob", "after_merge", "fresh_fields"]


class MergedJob(Protocol):
    """What :func:`after_merge` reads of a merged job (``pipeline.merge.MergeJob`` has it)."""

    @property
    def id(self) -> str: ...
    @property
    def run_id(self) -> str: ...
    @property
    def bronze_track_id(self) -> str: ...
    @property
    def fields(self) -> list[str] | None: ...
    @property
    def replay_mode(self) -> str | None: ...
    @property
    def reused_fields(self) -> list[str] | None: ...


_FRESH_SQL = text(
    """
    SELECT c.silver_track_id::text, c.metadata_field
    FROM silver_field_checks c
    JOIN enrichment_pipeline_runs r ON r.id = CAST(:run AS uuid)
    WHERE c.silver_track_id = ANY(CAST(:ids AS uuid[]))
      AND field_check_is_fresh(c.checked_at, c.config_hash,
                               r.waterfall_config_snapshot -> c.metadata_field)
    """
)


def fresh_fields(session: Session, run_id: str, silver_ids: Sequence[str]) -> dict[str, set[str]]:
    """silver id -> its fields that are fresh under ``run_id``'s configuration snapshot."""
    found: dict[str, set[str]] = {s: set() for s in silver_ids}
    if not silver_ids:
        return found
    for silver_id, name in session.execute(
        _FRESH_SQL, {"run": run_id, "ids": list(dict.fromkeys(silver_ids))}
    ):
        found.setdefault(silver_id, set()).add(name)
    return found


_CHECK = Bulk.of(
    """
    INSERT INTO silver_field_checks AS c
        (silver_track_id, metadata_field, checked_run_id, checked_at, config_hash)
    SELECT r.silver, r.field, r.run, now(), h.hash
    FROM {rows}
    JOIN enrichment_pipeline_runs pr ON pr.id = r.run
    CROSS JOIN LATERAL (SELECT field_config_hash(pr.waterfall_config_snapshot -> r.field)) h(hash)
    WHERE h.hash IS NOT NULL
    ON CONFLICT (silver_track_id, metadata_field) DO UPDATE SET
        checked_run_id = EXCLUDED.checked_run_id, checked_at = EXCLUDED.checked_at,
        config_hash = EXCLUDED.config_hash
    """,
    [("silver", "uuid"), ("field", "text"), ("run", "uuid")],
)

# One row per reused field: the value the track holds (its provenance), the run whose answer it
# is (the check), no provider call.
_REUSE = Bulk.of(
    """
    INSERT INTO enrichment_transformations
        (run_id, bronze_id, silver_id, transformation_type, metadata_field, provider_used,
         provider_confidence, output_value, transformation_rules, success)
    SELECT r.run, r.bronze, r.silver, 'merge', r.field, coalesce(fp.current_provider, 'none'),
           fp.current_confidence, coalesce(fp.current_value, 'null'::jsonb),
           jsonb_build_object(
               'reuse', true,
               'reused_from_run_id', coalesce(c.checked_run_id, fp.last_modified_run_id),
               'checked_at', c.checked_at,
               'reason', 'reused from run '
                   || coalesce(coalesce(c.checked_run_id, fp.last_modified_run_id)::text, '?')
                   || CASE WHEN fp.current_value IS NULL OR jsonb_typeof(fp.current_value) = 'null'
                           THEN ' (asked, no provider had a value)' ELSE '' END,
               'config_run_id', r.run),
           true
    FROM {rows}
    LEFT JOIN field_provenance fp ON fp.silver_track_id = r.silver AND fp.metadata_field = r.field
    LEFT JOIN silver_field_checks c ON c.silver_track_id = r.silver AND c.metadata_field = r.field
    """,
    [("run", "uuid"), ("bronze", "uuid"), ("silver", "uuid"), ("field", "text")],
)

# A field is checked when a provider answered it (found, not found, unavailable) and none of
# its lookups failed or was skipped: a field nobody could be asked about (its providers down or
# disabled) stays unchecked and is asked at the next sighting.
_ANSWERED_SQL = text(
    """
    SELECT l.job_id::text, f
    FROM enrichment_lookups l CROSS JOIN LATERAL unnest(l.fields) AS f
    WHERE l.job_id = ANY(CAST(:ids AS uuid[]))
    GROUP BY l.job_id, f
    HAVING bool_and(l.status NOT IN ('pending', 'failed', 'skipped'))
    """
)


def after_merge(
    session: Session, merged: Sequence[tuple[MergedJob, Plan, str, frozenset[str]]]
) -> None:
    """Record checks and reuse rows for merged jobs: ``(job, plan, silver id, fields this
    merge wrote)`` each. A reused field this merge wrote anyway (its own source's scraped value
    won) has its merge row and gets no reuse row."""
    if not merged:
        return
    answered: set[tuple[str, str]] = {
        (j, f)
        for j, f in session.execute(_ANSWERED_SQL, {"ids": [str(m[0].id) for m in merged]})
    }
    checks: list[dict[str, Any]] = []
    reuses: list[dict[str, Any]] = []
    for job, plan, silver_id, written in merged:
        reused = set(job.reused_fields or ())
        wanted = set(job.fields) if job.fields else set(plan.rules)
        if job.replay_mode in (None, "live"):
            checks += [
                {"silver": silver_id, "field": f, "run": str(job.run_id)}
                for f in sorted(wanted - reused)
                if (str(job.id), f) in answered and f in plan.rules
            ]
        reuses += [
            {"run": str(job.run_id), "bronze": str(job.bronze_track_id), "silver": silver_id,
             "field": f}
            for f in sorted(reused - written)
        ]  # fmt: skip
    _REUSE.run(session, reuses)  # before the checks: the reused answer's run, not this one's
    # Two jobs of a batch may feed one track: one upsert may not touch a row twice.
    _CHECK.run(session, list({(c["silver"], c["field"]): c for c in checks}.values()))
