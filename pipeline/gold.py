"""The gold layer: incremental upserts for affected ids only.

The ``upsert_*`` functions re-aggregate just the ids they are given (one row per silver id,
``ON CONFLICT`` upserts) and ``refresh_views`` runs ``refresh_gold_materialized_views()``
(concurrent refreshes: readers are never blocked); the tasks layer debounces it so many merges
cause one refresh. Silver playlists are written by ``pipeline.merge.playlists``
(``merge_playlist``, re-exported here for the callers that imported it from gold).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from pipeline.merge import merge_playlist  # silver playlists' writer; kept importable here
from pipeline.quality import GOLD_STATUSES

__all__ = [
    "artists_of_tracks",
    "artists_owed",
    "claim_owed",
    "claim_owed_artists",
    "merge_playlist",
    "owe",
    "owe_artists",
    "owe_tracks",
    "owed_marks",
    "owed_older_than",
    "pay_owed",
    "refresh_views",
    "upsert_artist_analytics",
    "upsert_playlist_analytics",
    "upsert_track_analytics",
]


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
# it is aggregated once. A track's appearances (count, last played) are owed the same way when a
# setlist names it (migration 023): a hit is in most setlists, and each setlist's merge counted
# all its appearances again (24 ms per setlist in bench/sightings' 20k re-scrape, and growing).


@dataclass(frozen=True)
class _Owed:
    """One queue of owed gold rows: its table, id column, the silver table the ids belong to,
    and the upsert that pays them."""

    table: str
    column: str
    parent: str
    pay: Callable[[Session, Sequence[str]], object]


_QUEUES = {
    "artists": _Owed("gold_artist_refresh_queue", "artist_id", "silver_enriched_artists",
                     upsert_artist_analytics),
    "tracks": _Owed("gold_track_refresh_queue", "track_id", "silver_enriched_tracks",
                    upsert_track_analytics),
}  # fmt: skip


def _queue(kind: str) -> _Owed:
    try:
        return _QUEUES[kind]
    except KeyError:
        raise ValueError(f"no owed gold queue {kind!r} ({', '.join(_QUEUES)})") from None


def owe(session: Session, kind: str, ids: Sequence[str]) -> int:
    """Mark these ``kind`` (``artists``, ``tracks``) gold rows as owed (a mark already there is
    renewed: its ``marked_at`` moves on); returns how many marks were written.

    Call it with the silver change that made them stale, or after it committed, and commit
    soon (a hit's mark is locked until then): a payment reads the marks, then silver, then
    deletes only the marks it read unchanged, so a change committed with or before its mark is
    either seen by the payment or leaves a renewed mark for the next one. Ids sorted:
    concurrent markers lock the marks in one order.
    """
    q = _queue(kind)
    keys = sorted({str(i) for i in ids})
    if not keys:
        return 0
    result = session.execute(
        text(
            f"INSERT INTO {q.table} ({q.column}) "
            "SELECT a FROM unnest(CAST(:ids AS uuid[])) AS a "
            f"WHERE EXISTS (SELECT 1 FROM {q.parent} s WHERE s.id = a) "
            f"ORDER BY a ON CONFLICT ({q.column}) DO UPDATE SET marked_at = clock_timestamp()"
        ),
        {"ids": keys},
    )
    return int(getattr(result, "rowcount", 0) or 0)


def owe_artists(session: Session, artist_ids: Sequence[str]) -> int:
    """:func:`owe` for artists."""
    return owe(session, "artists", artist_ids)


def owe_tracks(session: Session, track_ids: Sequence[str]) -> int:
    """:func:`owe` for tracks (their appearances changed: a setlist naming them was merged)."""
    return owe(session, "tracks", track_ids)


def owed_marks(
    session: Session, limit: int = 500, kind: str = "artists"
) -> list[tuple[str, Any]]:
    """Up to ``limit`` owed rows, oldest marks first, with the mark each was read with. A
    plain read: nothing is locked while the payment aggregates (a claim that deleted the marks
    first held them locked through the aggregation, and every merge marking a popular artist
    waited for it: 52 s of mark inserts over 20 ms in the 20k-row bench)."""
    q = _queue(kind)
    rows = session.execute(
        text(f"SELECT {q.column}::text, marked_at FROM {q.table} ORDER BY marked_at LIMIT :n"),
        {"n": limit},
    )
    return [(r[0], r[1]) for r in rows]


def pay_owed(session: Session, marks: Sequence[tuple[str, Any]], kind: str = "artists") -> int:
    """Aggregate the rows of ``marks`` (silver as committed now, after the marks were read),
    then delete each mark that is still as it was read; a mark renewed meanwhile stays owed.
    Returns how many marks were paid off."""
    if not marks:
        return 0
    q = _queue(kind)
    q.pay(session, sorted({a for a, _ in marks}))
    result = session.execute(
        text(
            f"DELETE FROM {q.table} q "
            "USING unnest(CAST(:ids AS uuid[]), CAST(:ats AS timestamptz[])) AS m(id, at) "
            f"WHERE q.{q.column} = m.id AND q.marked_at = m.at"
        ),
        {"ids": [a for a, _ in marks], "ats": [at for _, at in marks]},
    )
    return int(getattr(result, "rowcount", 0) or 0)


def claim_owed(session: Session, kind: str, limit: int = 500) -> list[str]:
    """Read up to ``limit`` owed ``kind`` rows and pay them (:func:`owed_marks`,
    :func:`pay_owed`) in the caller's transaction; returns the ids aggregated."""
    marks = owed_marks(session, limit, kind)
    pay_owed(session, marks, kind)
    return sorted({a for a, _ in marks})


def claim_owed_artists(session: Session, limit: int = 500) -> list[str]:
    """:func:`claim_owed` for artists."""
    return claim_owed(session, "artists", limit)


def owed_older_than(session: Session, kind: str, older_than_s: float) -> int:
    """Owed ``kind`` rows marked more than ``older_than_s`` ago (the debounced payment should
    have run by then: the sweeper re-sends it)."""
    q = _queue(kind)
    return int(
        session.execute(
            text(
                f"SELECT count(*) FROM {q.table} "
                "WHERE marked_at < now() - make_interval(secs => :s)"
            ),
            {"s": float(older_than_s)},
        ).scalar_one()
    )


def artists_owed(session: Session, older_than_s: float) -> int:
    """:func:`owed_older_than` for artists."""
    return owed_older_than(session, "artists", older_than_s)


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
