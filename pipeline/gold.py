"""Silver playlists and the gold layer: incremental upserts for affected ids only.

``merge_playlist`` builds a silver playlist (with its ordered ``silver_playlist_tracks``) once every
track of a bronze setlist is merged. The ``upsert_*`` functions re-aggregate just the ids they are
given (one row per silver id, ``ON CONFLICT`` upserts) and ``refresh_views`` runs
``refresh_gold_materialized_views()`` (concurrent refreshes: readers are never blocked); the tasks
layer debounces it so many merges cause one refresh.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from pipeline.merge import upsert_artist
from pipeline.normalise.text import clean_scraped
from pipeline.quality import GOLD_STATUSES
from pipeline.tracklist import TracklistEntry, read_tracklist

__all__ = [
    "artists_of_tracks",
    "artists_owed",
    "claim_owed_artists",
    "complete_playlists",
    "merge_playlist",
    "owe_artists",
    "refresh_views",
    "upsert_artist_analytics",
    "upsert_playlist_analytics",
    "upsert_track_analytics",
]


def _entry_key(position: int | None, raw: object) -> tuple[int | None, str]:
    return position, json.dumps(raw, sort_keys=True, ensure_ascii=False, default=str)


def _entry_status(entry: TracklistEntry, silver_track_id: object) -> str:
    if silver_track_id is not None:
        return "identified"
    return "unresolved" if entry.identified else "unidentified"


def merge_playlist(session: Session, bronze_playlist_id: str) -> str | None:
    """Silver playlist of a bronze setlist, or None while some of its tracks are not merged.

    Every entry of the tracklist as sent (``raw_json.tracks`` of the bronze playlist, read by
    ``pipeline.tracklist``) becomes one ``silver_playlist_tracks`` row in the order sent:
    identified (its silver track), unidentified (placeholder or unusable name) or unresolved
    (named, but its merge failed), with its slot role, mashup parts and cue time. A setlist
    with no identified entry is still stored (``needs_review``)."""
    session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
        {"k": f"playlist:{bronze_playlist_id}"},
    )
    rows = session.execute(
        text("""
            SELECT b.id AS bronze_id, b.position, b.raw_json,
                   (SELECT j.silver_track_id FROM enrichment_jobs j
                     WHERE j.bronze_track_id = b.id AND j.status = 'merged'
                     ORDER BY j.merged_at DESC LIMIT 1) AS silver_track_id,
                   EXISTS (SELECT 1 FROM enrichment_jobs j WHERE j.bronze_track_id = b.id
                           AND j.status IN ('merged', 'failed')) AS merged
            FROM bronze_scraped_tracks b
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
        text("""
            SELECT p::text FROM unnest(CAST(:ids AS uuid[])) AS p
            WHERE NOT EXISTS (
                SELECT 1 FROM bronze_scraped_tracks b
                WHERE b.playlist_id = p AND NOT EXISTS (
                    SELECT 1 FROM enrichment_jobs j WHERE j.bronze_track_id = b.id
                      AND j.status IN ('merged', 'failed')))
            ORDER BY 1"""),
        {"ids": ids},
    )
    return [r[0] for r in rows]


def upsert_track_analytics(session: Session, silver_ids: Sequence[str]) -> int:
    """Re-aggregate gold rows of these silver tracks; drop rows that no longer qualify."""
    if not silver_ids:
        return 0
    ids = [str(i) for i in silver_ids]
    # A track qualifies when its status allows gold and every required_for_gold field is set.
    session.execute(
        text("""DELETE FROM gold_track_analytics g USING silver_enriched_tracks s
                WHERE g.silver_track_id = s.id AND s.id = ANY(CAST(:ids AS uuid[]))
                  AND (s.validation_status <> ALL(:ok) OR jsonb_array_length(
                       coalesce(s.validation_errors, '[]'::jsonb)) > 0)"""),
        {"ids": ids, "ok": list(GOLD_STATUSES)},
    )
    result = session.execute(
        text("""
            INSERT INTO gold_track_analytics AS g
                (silver_track_id, artist_name, track_title, full_track_name, spotify_id, isrc,
                 bpm, key, genre_primary, genres, energy, valence, danceability,
                 playlist_appearances, first_seen_at, last_played_at, compatible_keys,
                 key_family, data_quality_score, enrichment_completeness, last_analyzed_at)
            SELECT s.id, s.artist_name, s.track_title, s.artist_name || ' - ' || s.track_title,
                   s.spotify_id, s.isrc, s.bpm, s.key, s.genre[1], s.genre, s.energy, s.valence,
                   s.danceability,
                   (SELECT count(*) FROM silver_playlist_tracks pt WHERE pt.track_id = s.id),
                   s.created_at,
                   (SELECT max(p.event_date)::timestamptz FROM silver_playlist_tracks pt
                      JOIN silver_enriched_playlists p ON p.id = pt.playlist_id
                     WHERE pt.track_id = s.id),
                   calculate_compatible_keys(s.key),
                   CASE WHEN s.key LIKE '%A' THEN 'minor' WHEN s.key LIKE '%B' THEN 'major' END,
                   s.data_quality_score, calculate_enrichment_completeness(s.*), now()
            FROM silver_enriched_tracks s
            WHERE s.id = ANY(CAST(:ids AS uuid[])) AND s.validation_status = ANY(:ok)
              AND jsonb_array_length(coalesce(s.validation_errors, '[]'::jsonb)) = 0
            ON CONFLICT (silver_track_id) DO UPDATE SET
                artist_name = EXCLUDED.artist_name, track_title = EXCLUDED.track_title,
                full_track_name = EXCLUDED.full_track_name, spotify_id = EXCLUDED.spotify_id,
                isrc = EXCLUDED.isrc, bpm = EXCLUDED.bpm, key = EXCLUDED.key,
                genre_primary = EXCLUDED.genre_primary, genres = EXCLUDED.genres,
                energy = EXCLUDED.energy, valence = EXCLUDED.valence,
                danceability = EXCLUDED.danceability,
                playlist_appearances = EXCLUDED.playlist_appearances,
                last_played_at = EXCLUDED.last_played_at,
                compatible_keys = EXCLUDED.compatible_keys, key_family = EXCLUDED.key_family,
                data_quality_score = EXCLUDED.data_quality_score,
                enrichment_completeness = EXCLUDED.enrichment_completeness,
                last_analyzed_at = now()"""),
        {"ids": ids, "ok": list(GOLD_STATUSES)},
    )
    return int(getattr(result, "rowcount", 0) or 0)


def upsert_artist_analytics(session: Session, artist_ids: Sequence[str]) -> None:
    """Re-aggregate gold rows of these silver artists."""
    if not artist_ids:
        return
    session.execute(
        text("""
            INSERT INTO gold_artist_analytics AS g
                (silver_artist_id, artist_name, aliases, primary_genre, genres, spotify_id,
                 musicbrainz_id, beatport_id, total_tracks, total_playlists, total_appearances,
                 collaboration_count, avg_bpm, avg_energy, avg_danceability, most_common_key,
                 first_appearance_date, last_appearance_date, data_quality_score,
                 last_analyzed_at)
            SELECT a.id, a.canonical_name, a.aliases, stats.genres[1], stats.genres, a.spotify_id,
                   a.musicbrainz_id, a.beatport_id, coalesce(stats.tracks, 0),
                   coalesce(pl.playlists, 0), coalesce(pl.appearances, 0),
                   coalesce(collab.n, 0), stats.avg_bpm, stats.avg_energy, stats.avg_dance,
                   stats.common_key, pl.first_date, pl.last_date, stats.quality, now()
            FROM silver_enriched_artists a
            LEFT JOIN LATERAL (
                SELECT count(*) AS tracks, round(avg(t.bpm), 2) AS avg_bpm,
                       round(avg(t.energy), 2) AS avg_energy,
                       round(avg(t.danceability), 2) AS avg_dance,
                       mode() WITHIN GROUP (ORDER BY t.key) AS common_key,
                       round(avg(t.data_quality_score), 2) AS quality,
                       (SELECT array_agg(g ORDER BY n DESC, g) FROM (
                            SELECT g, count(*) AS n FROM silver_track_artists ta2
                            JOIN silver_enriched_tracks t2 ON t2.id = ta2.track_id,
                            unnest(t2.genre) g WHERE ta2.artist_id = a.id GROUP BY g) x) AS genres
                FROM silver_track_artists ta JOIN silver_enriched_tracks t ON t.id = ta.track_id
                WHERE ta.artist_id = a.id) stats ON true
            LEFT JOIN LATERAL (
                SELECT count(DISTINCT pt.playlist_id) AS playlists, count(*) AS appearances,
                       min(p.event_date) AS first_date, max(p.event_date) AS last_date
                FROM silver_track_artists ta
                JOIN silver_playlist_tracks pt ON pt.track_id = ta.track_id
                JOIN silver_enriched_playlists p ON p.id = pt.playlist_id
                WHERE ta.artist_id = a.id) pl ON true
            LEFT JOIN LATERAL (
                SELECT count(DISTINCT other.artist_id) AS n
                FROM silver_track_artists ta
                JOIN silver_track_artists other ON other.track_id = ta.track_id
                     AND other.artist_id <> ta.artist_id
                WHERE ta.artist_id = a.id) collab ON true
            WHERE a.id = ANY(CAST(:ids AS uuid[]))
            ON CONFLICT (silver_artist_id) DO UPDATE SET
                artist_name = EXCLUDED.artist_name, aliases = EXCLUDED.aliases,
                primary_genre = EXCLUDED.primary_genre, genres = EXCLUDED.genres,
                total_tracks = EXCLUDED.total_tracks, total_playlists = EXCLUDED.total_playlists,
                total_appearances = EXCLUDED.total_appearances,
                collaboration_count = EXCLUDED.collaboration_count,
                avg_bpm = EXCLUDED.avg_bpm, avg_energy = EXCLUDED.avg_energy,
                avg_danceability = EXCLUDED.avg_danceability,
                most_common_key = EXCLUDED.most_common_key,
                first_appearance_date = EXCLUDED.first_appearance_date,
                last_appearance_date = EXCLUDED.last_appearance_date,
                data_quality_score = EXCLUDED.data_quality_score, last_analyzed_at = now()"""),
        {"ids": [str(i) for i in artist_ids]},
    )


# Artists' aggregates are owed, then paid in batches (migration 019, issue 17). A popular
# artist is named by most setlists; re-aggregating it per setlist read all its appearances each
# time, so the work grew with the square of the repeats (bench/sightings: the 20k-row run never
# finished). Marks are coalesced per artist: however many merges mark it while a payment is due,
# it is aggregated once.


def owe_artists(session: Session, artist_ids: Sequence[str]) -> int:
    """Mark these artists' gold aggregates as owed; returns how many were newly marked.

    Call it in a transaction of its own, after the silver change that made them stale has
    committed: a claim that deletes a mark re-reads silver afterwards, so it cannot miss a
    change committed before the mark (marked inside that change's transaction, a claim could
    delete the mark and aggregate without seeing the change). Ids sorted: concurrent markers
    insert in one order.
    """
    ids = sorted({str(i) for i in artist_ids})
    if not ids:
        return 0
    result = session.execute(
        text(
            "INSERT INTO gold_artist_refresh_queue (artist_id) "
            "SELECT a FROM unnest(CAST(:ids AS uuid[])) AS a "
            "WHERE EXISTS (SELECT 1 FROM silver_enriched_artists s WHERE s.id = a) "
            "ORDER BY a ON CONFLICT (artist_id) DO NOTHING"
        ),
        {"ids": ids},
    )
    return int(getattr(result, "rowcount", 0) or 0)


def claim_owed_artists(session: Session, limit: int = 500) -> list[str]:
    """Take up to ``limit`` owed artists (oldest marks first) and aggregate them, in the
    caller's transaction: a failure rolls the claim back with the aggregates. Claims running
    at once take disjoint artists (``SKIP LOCKED``)."""
    ids = sorted(
        str(r[0])
        for r in session.execute(
            text(
                "DELETE FROM gold_artist_refresh_queue q WHERE q.artist_id IN ("
                "  SELECT artist_id FROM gold_artist_refresh_queue ORDER BY marked_at"
                "  LIMIT :n FOR UPDATE SKIP LOCKED) "
                "RETURNING q.artist_id"
            ),
            {"n": limit},
        )
    )
    upsert_artist_analytics(session, ids)
    return ids


def artists_owed(session: Session, older_than_s: float) -> int:
    """Owed artists marked more than ``older_than_s`` ago (the debounced payment should have
    run by then: the sweeper re-sends it)."""
    return int(
        session.execute(
            text(
                "SELECT count(*) FROM gold_artist_refresh_queue "
                "WHERE marked_at < now() - make_interval(secs => :s)"
            ),
            {"s": float(older_than_s)},
        ).scalar_one()
    )


def upsert_playlist_analytics(session: Session, playlist_ids: Sequence[str]) -> None:
    """Gold rows of these silver playlists: harmonic flow, key changes, energy curve, genres."""
    for pid in playlist_ids:
        p = session.execute(
            text("SELECT * FROM silver_enriched_playlists WHERE id = :id"), {"id": pid}
        ).one()
        tracks = session.execute(
            text("""SELECT pt.position, t.key, t.bpm, t.energy, t.genre, t.artist_name,
                           t.data_quality_score, t.duration_ms
                    FROM silver_playlist_tracks pt JOIN silver_enriched_tracks t
                      ON t.id = pt.track_id
                    WHERE pt.playlist_id = :id ORDER BY pt.position, pt.sequence"""),
            {"id": pid},
        ).all()
        # Harmonic flow, key changes and the graded score come from SQL
        # (playlist_harmonic_flow, migration 012), over adjacent positions only.
        hf = session.execute(
            text("SELECT * FROM playlist_harmonic_flow(CAST(:id AS uuid))"), {"id": pid}
        ).one()
        genres = Counter(t.genre[0] for t in tracks if t.genre)
        bpms = [float(t.bpm) for t in tracks if t.bpm is not None]
        energies = [float(t.energy) for t in tracks if t.energy is not None]
        featured = sorted({a for t in tracks for a in [t.artist_name] if a} - {p.artist_name})
        # Identified entries over every entry of the set (w/ slots and unidentified included).
        counts = session.execute(
            text(
                "SELECT count(*) AS n, count(*) FILTER (WHERE entry_status = 'identified') AS ok "
                "FROM silver_playlist_tracks WHERE playlist_id = :id"
            ),
            {"id": pid},
        ).one()
        rate = round(counts.ok / counts.n, 2) if counts.n else None
        session.execute(
            text("""
                INSERT INTO gold_playlist_analytics
                    (silver_playlist_id, playlist_name, artist_name, event_name, event_date,
                     track_count, total_duration_ms, avg_bpm, avg_energy, genre_distribution,
                     primary_genre, key_changes, harmonic_flow_score, energy_curve,
                     featured_artists, collaboration_count, data_quality_score,
                     track_identification_rate, harmonic_transitions, compatible_transitions,
                     harmonic_flow_graded, last_analyzed_at)
                VALUES (:pid, :name, :artist, :event, :date, :count, :duration, :bpm, :energy,
                        CAST(:genres AS jsonb), :primary, :changes, :flow, CAST(:curve AS jsonb),
                        :featured, :collab, :quality, :rate, :transitions, :compatible, :graded,
                        now())
                ON CONFLICT (silver_playlist_id) DO UPDATE SET
                    track_count = EXCLUDED.track_count,
                    total_duration_ms = EXCLUDED.total_duration_ms, avg_bpm = EXCLUDED.avg_bpm,
                    avg_energy = EXCLUDED.avg_energy,
                    genre_distribution = EXCLUDED.genre_distribution,
                    primary_genre = EXCLUDED.primary_genre, key_changes = EXCLUDED.key_changes,
                    harmonic_flow_score = EXCLUDED.harmonic_flow_score,
                    energy_curve = EXCLUDED.energy_curve,
                    featured_artists = EXCLUDED.featured_artists,
                    collaboration_count = EXCLUDED.collaboration_count,
                    data_quality_score = EXCLUDED.data_quality_score,
                    track_identification_rate = EXCLUDED.track_identification_rate,
                    harmonic_transitions = EXCLUDED.harmonic_transitions,
                    compatible_transitions = EXCLUDED.compatible_transitions,
                    harmonic_flow_graded = EXCLUDED.harmonic_flow_graded,
                    last_analyzed_at = now()"""),
            {
                "pid": pid,
                "name": p.playlist_name,
                "artist": p.artist_name,
                "event": p.event_name,
                "date": p.event_date,
                "count": len(tracks),
                "duration": sum(t.duration_ms or 0 for t in tracks) or None,
                "bpm": round(sum(bpms) / len(bpms), 2) if bpms else None,
                "energy": round(sum(energies) / len(energies), 2) if energies else None,
                "genres": json.dumps(dict(genres)),
                "primary": genres.most_common(1)[0][0] if genres else None,
                "changes": hf.key_changes,
                "flow": hf.flow,
                "transitions": hf.transitions,
                "compatible": hf.compatible,
                "graded": hf.graded,
                "curve": json.dumps(
                    [[t.position, None if t.energy is None else float(t.energy)] for t in tracks]
                ),
                "featured": featured,
                "collab": len(featured),
                "quality": p.data_quality_score,
                "rate": rate,
            },
        )


def refresh_views(session: Session) -> None:
    """Refresh every gold materialised view concurrently."""
    session.execute(text("SELECT refresh_gold_materialized_views()"))


def artists_of_tracks(session: Session, silver_ids: Sequence[str]) -> list[str]:
    rows = session.execute(
        text(
            "SELECT DISTINCT artist_id FROM silver_track_artists "
            "WHERE track_id = ANY(CAST(:ids AS uuid[]))"
        ),
        {"ids": [str(i) for i in silver_ids]},
    )
    return [str(r[0]) for r in rows]
