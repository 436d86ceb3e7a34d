"""Refresh time of the gold materialised views (dominated by the harmonic recommendations).

``python -m bench.harmonic_view [--tracks N]``: loads N gold tracks with a realistic key/BPM
spread (Camelot keys roughly uniform; BPM clustered: house 120-130, techno ~140, dnb 170-175,
some half-time 85-88) and times ``refresh_gold_materialized_views()``. Baseline: the same
refresh over a 10x smaller sample, scaled linearly (ratio ~1 means linear scaling; the original
cross join would be ~10 here). Rolled back at the end.
"""

from __future__ import annotations

import argparse

import psycopg

from bench._common import Timer, bench_database, emit, libpq

__all__ = ["main"]

LOAD = """
INSERT INTO silver_enriched_tracks (artist_name, track_title, identity_key)
SELECT 'artist ' || g, 'title ' || g, 'bench|' || g FROM generate_series(1, {n}) g;
INSERT INTO gold_track_analytics (silver_track_id, full_track_name, key, bpm, energy,
                                  genre_primary, data_quality_score, playlist_appearances)
SELECT s.id, s.artist_name || ' - ' || s.track_title,
       (1 + floor(random() * 12)::int)::text
           || (CASE WHEN random() < 0.55 THEN 'A' ELSE 'B' END),
       round(CASE
           WHEN r < 0.55 THEN 120 + random() * 10
           WHEN r < 0.75 THEN 138 + random() * 4
           WHEN r < 0.92 THEN 170 + random() * 5
           ELSE 85 + random() * 3 END::numeric, 2),
       round(random()::numeric, 2),
       (ARRAY['house', 'techno', 'drum and bass', 'trance'])[1 + (random() * 3)::int],
       0.7 + round((random() * 0.3)::numeric, 2),
       (random() * 50)::int
FROM (SELECT id, artist_name, track_title, random() AS r FROM silver_enriched_tracks
      WHERE identity_key LIKE 'bench|%') s;
ANALYZE gold_track_analytics;
"""


def _refresh_seconds(conn: psycopg.Connection[object], n: int) -> float:
    conn.execute("DELETE FROM gold_track_analytics")
    conn.execute("DELETE FROM silver_enriched_tracks WHERE identity_key LIKE 'bench|%'")
    # Several statements in one call: only possible without parameters (n is an int).
    conn.execute(LOAD.replace("{n}", str(int(n))))
    with Timer() as t:
        conn.execute("SELECT refresh_gold_materialized_views()")
    return t.seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--short", action="store_true", help="CI: 10k tracks")
    args = parser.parse_args(argv)
    if args.short:
        args.tracks = min(args.tracks, 10_000)
    with bench_database() as url, psycopg.connect(libpq(url)) as conn:
        try:
            small = _refresh_seconds(conn, max(args.tracks // 10, 1))
            full = _refresh_seconds(conn, args.tracks)
            recs = conn.execute("SELECT count(*) FROM gold_harmonic_mixing_recommendations")
            count = recs.fetchone()
        finally:
            conn.rollback()
    baseline = small * 10
    print(f"refresh with {args.tracks // 10} tracks: {small:.2f}s (x10 = {baseline:.2f}s)")
    print(f"refresh with {args.tracks} tracks: {full:.2f}s, {count[0] if count else 0} recs")
    emit("harmonic_view", full, "s", baseline, full / baseline)


if __name__ == "__main__":
    main()
