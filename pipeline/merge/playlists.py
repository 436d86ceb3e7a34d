"""The one writer of silver playlists (``silver_enriched_playlists`` and their ordered
``silver_playlist_tracks``): :func:`merge_playlist` builds a setlist's silver playlist once every
track of the bronze setlist is merged (or failed). Gold (``pipeline.gold``) reads what it wrote.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from pipeline.merge.artists import upsert_artist
from pipeline.merge.identity import advisory_lock
from pipeline.normalise.text import clean_scraped
from pipeline.tracklist import TracklistEntry, read_tracklist

__all__ = ["complete_playlists", "merge_playlist"]


def _entry_key(position: int | None, raw: object) -> tuple[int | None, str]:
    return position, json.dumps(raw, sort_keys=True, ensure_ascii=False, default=str)


def _entry_status(entry: TracklistEntry, silver_track_id: object) -> str:
    if silver_track_id is not None:
        return "identified"
    return "unresolved" if entry.identified else "unidentified"


# A bronze row's jobs, as one correlated aggregate: the latest merged job's silver track and
# whether any job is done. An aggregate subquery is always run per row through the job index;
# written as EXISTS, the planner (row estimates of a table growing by thousands a minute) chose
# a hashed scan of every job for each setlist read (bench/sightings, 20k rows: 46 s of 993
# reads over 20 ms).
_JOBS_OF_ROW = """
    SELECT (array_agg(j.silver_track_id ORDER BY j.merged_at DESC)
              FILTER (WHERE j.status = 'merged'))[1] AS silver_track_id,
           coalesce(bool_or(j.status IN ('merged', 'failed')), false) AS merged
    FROM enrichment_jobs j WHERE j.bronze_track_id = b.id
"""


def merge_playlist(session: Session, bronze_playlist_id: str) -> str | None:
    """Silver playlist of a bronze setlist, or None while some of its tracks are not merged.

    Every entry of the tracklist as sent (``raw_json.tracks`` of the bronze playlist, read by
    ``pipeline.tracklist``) becomes one ``silver_playlist_tracks`` row in the order sent:
    identified (its silver track), unidentified (placeholder or unusable name) or unresolved
    (named, but its merge failed), with its slot role, mashup parts and cue time. A setlist
    with no identified entry is still stored (``needs_review``)."""
    advisory_lock(session, f"playlist:{bronze_playlist_id}")
    rows = session.execute(
        text(f"""
            SELECT b.id AS bronze_id, b.position, b.raw_json, j.silver_track_id, j.merged
            FROM bronze_scraped_tracks b
            CROSS JOIN LATERAL ({_JOBS_OF_ROW}) j
            WHERE b.playlist_id = :pid ORDER BY b.position"""),
        {"pid": bronze_playlist_id},
    ).all()
    if not all(r.merged for r in rows):
        return None
    bp = session.execute(
        text("SELECT * FROM bronze_scraped_playlists WHERE id = :id"), {"id": bronze_playlist_id}
    ).one()
    raw_tracks = bp.raw_json.get("tracks") if isinstance(bp.raw_json, dict) else None
    entries = read_tracklist(raw_tracks)
    if not rows and entries:
        return None  # not appended yet (cannot happen in one transaction; kept defensive)
    # Each entry's bronze row: by (position, entry as sent); rows written before the entry was
    # stored as sent (a cleaned copy) are found by their position when it is unique.
    by_key = {_entry_key(r.position, r.raw_json): r for r in rows}
    by_position: dict[int | None, list[Any]] = {}
    for r in rows:
        by_position.setdefault(r.position, []).append(r)
    members = []
    for e in entries:
        row = by_key.get(_entry_key(e.position, e.raw))
        if row is None and e.raw is not None and len(by_position.get(e.position, [])) == 1:
            row = by_position[e.position][0]
        track = row.silver_track_id if row is not None and e.identified else None
        members.append((e, row, track))
    identified = sum(1 for _, _, t in members if t is not None)
    quality = round(identified / len(members), 2) if members else 0.0
    status = "needs_review" if not identified else ("valid" if quality >= 0.7 else "warning")
    dj = clean_scraped(bp.artist_name) or "Unknown DJ"  # bronze keeps names as sent
    artist_id = upsert_artist(session, dj)
    meta = {
        "source": bp.source,
        "unidentified": sum(1 for e, _, t in members if t is None),
        "flagged": sum(1 for e in entries if e.flags),
        "mashups": sum(1 for e in entries if e.mashup),
        "with_slots": sum(1 for e in entries if e.slot_role == "with"),
    }
    playlist_id = session.execute(
        text("""
            INSERT INTO silver_enriched_playlists
                (bronze_id, playlist_name, artist_id, artist_name, event_name, event_date,
                 track_count, validation_status, data_quality_score, enrichment_metadata,
                 validated_at, enriched_at)
            VALUES (:bronze, :name, :artist_id, :artist, :event, :date, :count, :status,
                    :quality, CAST(:meta AS jsonb), now(), now())
            ON CONFLICT (bronze_id) WHERE bronze_id IS NOT NULL DO UPDATE SET
                track_count = EXCLUDED.track_count,
                data_quality_score = EXCLUDED.data_quality_score,
                enrichment_metadata = EXCLUDED.enrichment_metadata,
                validation_status = EXCLUDED.validation_status, enriched_at = now()
            RETURNING id"""),
        {
            "bronze": bronze_playlist_id,
            "name": clean_scraped(bp.playlist_name),
            "artist_id": artist_id,
            "artist": dj,
            "event": clean_scraped(bp.event_name),
            "date": bp.event_date,
            "count": len(members),
            "status": status,
            "quality": quality,
            "meta": json.dumps(meta),
        },
    ).scalar_one()
    session.execute(
        text("DELETE FROM silver_playlist_tracks WHERE playlist_id = :p"), {"p": playlist_id}
    )
    if members:
        session.execute(
            text("""
                INSERT INTO silver_playlist_tracks
                    (playlist_id, sequence, track_id, position, cue_time_ms, bronze_track_id,
                     entry_status, slot_role, mashup, mashup_parts, cue_time_raw)
                VALUES (:p, :seq, :t, :pos, :cue, :bronze, :status, :role, :mashup,
                        CAST(:parts AS jsonb), :cue_raw)"""),
            [
                {
                    "p": playlist_id,
                    "seq": e.index + 1,
                    "t": track,
                    "pos": e.position,
                    "cue": e.cue_time_ms,
                    "bronze": None if row is None else row.bronze_id,
                    "status": _entry_status(e, track),
                    "role": e.slot_role,
                    "mashup": e.mashup,
                    "parts": None if e.mashup_parts is None else json.dumps(e.mashup_parts),
                    "cue_raw": e.cue_time_raw,
                }
                for e, row, track in members
            ],
        )
    session.execute(
        text(
            "UPDATE silver_enriched_playlists SET total_duration_ms = (SELECT sum(t.duration_ms) "
            "FROM silver_playlist_tracks pt JOIN silver_enriched_tracks t ON t.id = pt.track_id "
            "WHERE pt.playlist_id = :p) WHERE id = :p"
        ),
        {"p": playlist_id},
    )
    return str(playlist_id)


def complete_playlists(session: Session, bronze_playlist_ids: Sequence[str]) -> list[str]:
    """Those of these bronze setlists whose every track row has a merged (or failed) job: the
    ones ``merge_playlist`` would build now (its own check, for many setlists in one query).

    A merge batch touches many setlists, each of whose ~20 tracks is merged by a different
    batch: sending ``merge_playlist`` for every setlist a batch touched made ~20 messages per
    setlist, all but the last finding it incomplete (bench/sightings: most of the gold queue).
    Call it after the merge committed: of two merges finishing a setlist's last tracks at once,
    the one that checks last sees both (both may send; ``merge_playlist`` is idempotent).
    """
    ids = sorted({str(p) for p in bronze_playlist_ids})
    if not ids:
        return []
    rows = session.execute(
        text(f"""
            SELECT p::text FROM unnest(CAST(:ids AS uuid[])) AS p
            WHERE NOT EXISTS (
                SELECT 1 FROM bronze_scraped_tracks b CROSS JOIN LATERAL ({_JOBS_OF_ROW}) j
                WHERE b.playlist_id = p AND NOT j.merged)
            ORDER BY 1"""),
        {"ids": ids},
    )
    return [r[0] for r in rows]
