"""The one writer of silver tracks (``silver_enriched_tracks``), in two modes.

* **Full** (:func:`write_track`, merges): a prepared job becomes a new track or updates the one
  its identity finds (a value replaces the current one when at least as confident, or always
  when ``override``), with the quality columns scored over the track as written; a linked-only
  job (issue 17) only adds its bronze row to the track's sightings (``silver_track_sightings``,
  022). Lineage, artist credits and sightings go to a :class:`PendingWrites` the batch flushes
  once.
* **Partial** (:func:`write_fields`, a replay's ``fields_to_replay``): only the replayed columns,
  ``field_confidence`` and ``enrichment_metadata.extra``, and the whole track re-scored as a
  merge scores it (warnings of fields not replayed kept).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.bulk import to_jsonb
from pipeline.errors import ReplayError
from pipeline.matching import artist_key, identity_key
from pipeline.merge.artists import credit_artists, upsert_artist
from pipeline.merge.identity import IDENTITY_IDS, SilverTrack, find_silver
from pipeline.merge.jobs import MergeJob, PreparedJob
from pipeline.merge.lineage import mark_merged, provenance_rows, write_lineage
from pipeline.merge.resolve import TRACK_COLUMNS, Resolution
from pipeline.quality import assess
from pipeline.waterfall import Plan

__all__ = ["PendingWrites", "write_fields", "write_track"]

Rows = list[dict[str, Any]]
Quality = Callable[[Mapping[str, Any]], dict[str, Any]]


@dataclass
class PendingWrites:
    """Rows of a merge batch that nothing in the batch reads back, written in one statement
    per table at the end (or earlier, before a later job of the batch reads the same silver
    track's provenance)."""

    merges: Rows = field(default_factory=list)
    provenance: Rows = field(default_factory=list)
    track_artists: Rows = field(default_factory=list)
    merged_jobs: Rows = field(default_factory=list)
    silver_ids: set[str] = field(default_factory=set)
    sightings: Rows = field(default_factory=list)  # issue 17, migration 022

    def add(
        self,
        silver_id: str,
        job_id: str,
        bronze_id: str,
        rows: tuple[Rows, Rows],
        links: Sequence[dict[str, Any]] = (),
    ) -> None:
        """One merged job: its merge transformations + provenance rows, artist links, status,
        and its bronze row as a sighting of the track (written only when it is not the
        track's first)."""
        merges, provenance = rows
        self.merges += merges
        self.provenance += provenance
        self.track_artists += links
        self.merged_jobs.append({"s": silver_id, "id": job_id})
        self.sightings.append({"s": silver_id, "b": bronze_id})
        self.silver_ids.add(silver_id)

    def flush(self, session: Session) -> None:
        write_lineage(session, self.merges, self.provenance)
        credit_artists(session, self.track_artists)
        mark_merged(session, self.merged_jobs)
        if self.sightings:
            # Last: a hit is sighted by most batches, and its key share is the only lock a
            # linked-only job takes, so it is held for the end of the batch only.
            session.execute(
                _SIGHTINGS,
                {"s": [r["s"] for r in self.sightings], "b": [r["b"] for r in self.sightings]},
            )
        for rows in (
            self.merges,
            self.provenance,
            self.track_artists,
            self.merged_jobs,
            self.sightings,
        ):
            rows.clear()
        self.silver_ids.clear()


_ALIAS = text(
    "INSERT INTO silver_track_aliases (identity_key, track_id) SELECT :k, CAST(:s AS uuid) "
    "WHERE NOT EXISTS (SELECT 1 FROM silver_enriched_tracks WHERE identity_key = :k) "
    "ON CONFLICT (identity_key) DO NOTHING"
)


def _remember_name(session: Session, job: MergeJob, silver_id: str) -> None:
    """Record the identity key of the job's bronze names as an alias of its track when no
    track holds that key (issue 17, migration 020): identity-first planning computes the same
    key from the next sighting's names and finds the track without asking a provider. The
    first track a name was resolved to keeps it."""
    try:
        key = identity_key(job.artist_name or "", job.track_title or "")
    except (TypeError, ValueError):
        return
    if key:
        session.execute(_ALIAS, {"k": key, "s": silver_id})


def write_track(
    session: Session,
    p: PreparedJob,
    override_fields: bool,
    pending: PendingWrites,
    artists: Mapping[str, str] | None = None,
    *,
    careful: bool = True,
) -> str:
    """Write one prepared job: silver track, quality, provenance, artists; returns the silver id.
    The caller already holds every advisory lock this needs. Provenance, track-artist links and
    the job's status go to ``pending``; the caller flushes it once for the batch. ``artists``:
    ids of artists known to exist (normalised name -> id). ``careful=False``: no savepoint
    around the silver write, an id conflict raises (the caller redoes the batch carefully)."""
    values, confidences, warnings = p.values, p.confidences, p.warnings
    job = p.job
    reuse = job.reuse_silver_id
    if p.linked_only:
        silver_id = str(reuse)
        pending.add(silver_id, job.id, job.bronze_track_id, ([], []))
        return silver_id
    existing = find_silver(session, values, p.ikey, silver_id=reuse)
    if existing is not None and existing.id in pending.silver_ids:
        # An earlier job of this batch fed this track: write its provenance, then read again.
        pending.flush(session)
        existing = find_silver(session, values, p.ikey, silver_id=reuse)
    # Provenance is written after this (pending), so one read serves both uses below.
    known_conf = dict(existing.known_confidence) if existing is not None else {}
    required = p.plan.required_fields()
    optional = [f for f in p.plan.rules if f not in required]

    def quality(current: Mapping[str, Any]) -> dict[str, Any]:
        """The quality columns for the track's values as written (``current``)."""
        all_conf = known_conf | {k: v for k, v in confidences.items() if k in current}
        q = assess(current, all_conf, required, optional, warnings)
        return {
            "q_score": q.score,
            "q_status": q.status,
            "q_errors": to_jsonb(q.errors),
            "q_warnings": to_jsonb(warnings),
            "q_meta": to_jsonb(p.metadata),
            "q_conf": to_jsonb({k: v for k, v in confidences.items() if v is not None}),
            "q_run": job.run_id,
        }

    silver_id = _write_silver(
        session,
        existing,
        values,
        confidences,
        p.ikey,
        job.bronze_track_id,
        override_fields,
        warnings,
        quality,
        careful,
    )
    _remember_name(session, job, silver_id)
    rows = provenance_rows(silver_id, job, p)
    known = artists or {}
    links = [
        {
            "t": silver_id,
            "a": known.get(artist_key(name)) or upsert_artist(session, name, locked=True),
            "p": position,
        }
        for position, name in enumerate(p.artist_names)
    ]
    # Only after every write of this job succeeded (the caller's savepoint may still roll it
    # back on an exception above, and then nothing of it may be flushed).
    pending.add(silver_id, job.id, job.bronze_track_id, rows, links)
    return silver_id


# The quality columns and what a merge writes to them (the ``q_*`` parameters come from the
# merge's ``quality``). Both JSON objects named in _QUALITY_ADDED are added to what the track
# has; a new track starts them at ``{}``, so an insert writes the value itself.
_QUALITY_VALUES = {
    "data_quality_score": ":q_score",
    "validation_status": ":q_status",
    "validation_errors": "CAST(:q_errors AS jsonb)",
    "validation_warnings": "CAST(:q_warnings AS jsonb)",
    "enrichment_metadata": "CAST(:q_meta AS jsonb)",
    "field_confidence": "CAST(:q_conf AS jsonb)",
    "enrichment_run_id": ":q_run",
    "enriched_at": "now()",
    "validated_at": "now()",
}
_QUALITY_ADDED = frozenset({"enrichment_metadata", "field_confidence"})
_QUALITY_SETS = ", ".join(
    f"{col} = {col} || {value}" if col in _QUALITY_ADDED else f"{col} = {value}"
    for col, value in _QUALITY_VALUES.items()
)


# Issue 17: each merged job's bronze row, unless it is its track's first (``bronze_id``), is a
# sighting of the track; a linked-only job writes nothing else (values, quality and metadata
# stay as the merges that chose them wrote them). One insert per sighting (022): the track's row
# is neither rewritten nor locked beyond the foreign key's KEY SHARE, which no other merge's NO
# KEY UPDATE waits for. Inserted in key order, so two batches linking the same rows (a
# redelivery) wait for each other rather than deadlock.
_SIGHTINGS = text(
    """
    INSERT INTO silver_track_sightings (bronze_id, silver_id)
    SELECT DISTINCT CAST(r.b AS uuid), t.id
    FROM unnest(CAST(:s AS text[]), CAST(:b AS text[])) AS r(s, b)
    JOIN silver_enriched_tracks t ON t.id = CAST(r.s AS uuid)
    WHERE t.bronze_id IS DISTINCT FROM CAST(r.b AS uuid)
    ORDER BY 1, 2
    ON CONFLICT DO NOTHING
    """
)


def _insert_silver(
    session: Session, params: dict[str, Any], ikey: str, bronze_id: str, quality: Quality
) -> str:
    """Insert the track with its quality columns, in one statement.

    Quality is judged on the values as given, not read back: it looks at which fields are
    present, and PostgreSQL stores every given one as present (no column a rule reads has a
    default; the write trigger only normalises the key).
    """
    cols = list(params)
    names = ["bronze_id", "identity_key", *cols, *_QUALITY_VALUES]
    values = [":bronze", ":ikey", *(f":{c}" for c in cols), *_QUALITY_VALUES.values()]
    new_id = session.execute(
        text(
            f"INSERT INTO silver_enriched_tracks ({', '.join(names)}) "
            f"VALUES ({', '.join(values)}) RETURNING id"
        ),
        params | {"ikey": ikey, "bronze": bronze_id} | quality(params),
    ).scalar_one()
    return str(new_id)


def _update_silver(
    session: Session,
    updates: dict[str, Any],
    silver_id: str,
    quality_params: dict[str, Any],
) -> str:
    """Write ``updates`` and the quality columns (``quality_params``, see ``_QUALITY_SETS``) to
    the track in one statement (its bronze row is a sighting: ``PendingWrites``)."""
    sets = "".join(f"{c} = :{c}, " for c in updates)
    session.execute(
        text(f"UPDATE silver_enriched_tracks SET {sets}{_QUALITY_SETS} WHERE id = :id"),
        updates | quality_params | {"id": silver_id},
    )
    return silver_id


def _id_conflict(warnings: list[dict[str, str]], what: str) -> None:
    # Another record already owns one of the ids (an ISRC shared by two names): keep the
    # track, drop the conflicting ids, and say so.
    warnings.append(
        {
            "field": "identity",
            "warning": f"provider ids already belong to another silver track; {what} "
            "(possible duplicate)",
        }
    )


def _write_silver(
    session: Session,
    existing: SilverTrack | None,
    values: dict[str, Any],
    confidences: dict[str, float | None],
    ikey: str,
    bronze_id: str,
    override: bool,
    warnings: list[dict[str, str]],
    quality: Quality,
    careful: bool = True,
) -> str:
    """Insert or update the silver track with its quality columns; returns its id.
    ``quality(values as written)``: the quality columns' parameters, computed after any
    warning about dropped ids. ``careful=False``: no savepoint, an id conflict raises
    ``IntegrityError``."""
    savepoint = session.begin_nested if careful else contextlib.nullcontext
    if existing is None:
        params = {c: values[c] for c in TRACK_COLUMNS if values.get(c) is not None}
        try:
            with savepoint():
                return _insert_silver(session, params, ikey, bronze_id, quality)
        except IntegrityError:
            if not careful:
                raise
            _id_conflict(warnings, "stored without them")
            safe = {c: v for c, v in params.items() if c not in IDENTITY_IDS}
            return _insert_silver(session, safe, ikey, bronze_id, quality)
    current, current_conf = existing.values, existing.known_confidence
    updates: dict[str, Any] = {}
    for col in TRACK_COLUMNS:
        new = values.get(col)
        if new is None:
            continue
        old_conf = current_conf.get(col)
        new_conf = confidences.get(col)
        if (
            override
            or current[col] is None
            or old_conf is None
            or (new_conf is not None and new_conf >= old_conf)
        ):
            updates[col] = new

    def written(cols: dict[str, Any]) -> dict[str, Any]:
        # The values the track has once ``cols`` are written: what quality is judged on.
        return {c: cols[c] if c in cols else current[c] for c in TRACK_COLUMNS}

    try:
        with savepoint():
            return _update_silver(session, updates, existing.id, quality(written(updates)))
    except IntegrityError:
        if not careful:
            raise
        safe = {c: v for c, v in updates.items() if c not in IDENTITY_IDS}
        _id_conflict(warnings, "not copied")
        return _update_silver(session, safe, existing.id, quality(written(safe)))


def write_fields(
    session: Session,
    silver_id: str,
    plan: Plan,
    resolved: Resolution,
    replayed: Collection[str],
    run_id: str,
) -> None:
    """Partial mode: write only ``resolved``'s fields (a replay's ``fields_to_replay``) to the
    track, with ``field_confidence``, ``enrichment_metadata.extra`` and the quality columns
    re-scored over the whole track. A replayed id another track owns raises ``ReplayError``."""
    cols = {c: v for c, v in (resolved.values | resolved.extra).items() if c in TRACK_COLUMNS}
    sets = "".join(f"{c} = :{c}, " for c in cols)
    conf = {k: v for k, v in resolved.confidences.items() if v is not None}
    quality = _rescore(session, plan, silver_id, cols, conf, set(replayed), resolved.warnings)
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


def _rescore(
    session: Session,
    plan: Plan,
    silver_id: str,
    cols: Mapping[str, Any],
    conf: Mapping[str, float | None],
    replayed: set[str],
    replay_warnings: list[dict[str, str]],
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
    ] + list(replay_warnings)
    required = plan.required_fields()
    optional = [f for f in plan.rules if f not in required]
    q = assess(current, known | dict(conf), required, optional, warnings)
    return {
        "q_score": q.score,
        "q_status": q.status,
        "q_errors": to_jsonb(q.errors),
        "q_warnings": to_jsonb(warnings),
    }
