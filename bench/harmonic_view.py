"""One track's harmonic suggestions cost the same at N gold tracks as at N/10 (computed on read).

``python -m bench.harmonic_view [--tracks N] [--short]``: loads N/10 gold tracks with a realistic
key/BPM spread (Camelot keys roughly uniform; BPM clustered: house 120-130, techno ~140, dnb
170-175, some half-time 85-88), times ``refresh_gold_materialized_views()`` (the two gold views
still materialised) and the p95 of ``gold_harmonic_mixing_recommendations WHERE source_track_id
= $1 ORDER BY rank`` for random tracks (prepared, after a warm-up); then grows the same tables to
N tracks and measures again. Value: the p95 at N; baseline: the p95 at N/10 in the same run, so
a ratio ~1 means size-independent (migration 007; the materialised view it replaced took 82 s to
refresh at 100k tracks, and suggestions were only as current as that refresh). With ``--short``
the small side has 1k tracks, where most BPM windows hold fewer than the 5 candidates a probe
takes, so it is cheaper and the ratio reads above 1; from 10k on the windows are full. Rolled
back at the end.
"""

from __future__ import annotations

import argparse
import math
import random
import time
from typing import Any

import psycopg

from bench._common import Timer, bench_database, emit, libpq

__all__ = ["main"]

# Tracks {lo}..{hi} (ints only: several statements in one call cannot take parameters).
LOAD = """
WITH s AS (
    INSERT INTO silver_enriched_tracks (artist_name, track_title, identity_key)
    SELECT 'artist ' || g, 'title ' || g, 'bench|' || g FROM generate_series({lo}, {hi}) g
    RETURNING id, artist_name, track_title
)
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
FROM (SELECT id, artist_name, track_title, random() AS r FROM s) s;
ANALYZE gold_track_analytics;
"""

QUERY = """
SELECT recommended_track_id, recommended_key, recommended_bpm, key_relation, tempo_relation,
       compatibility_score
FROM gold_harmonic_mixing_recommendations WHERE source_track_id = %s ORDER BY rank
"""

SAMPLES = 200
WARMUP = 20


def _grow(conn: psycopg.Connection[Any], lo: int, hi: int) -> None:
    conn.execute(LOAD.replace("{lo}", str(int(lo))).replace("{hi}", str(int(hi))))


def _measure(conn: psycopg.Connection[Any], rng: random.Random) -> tuple[float, list[float]]:
    """(refresh s, sorted suggestion-query ms over SAMPLES random tracks)."""
    with Timer() as refresh:
        conn.execute("SELECT refresh_gold_materialized_views()")
    ids = [r[0] for r in conn.execute("SELECT id FROM gold_track_analytics")]
    picks = rng.sample(ids, min(SAMPLES + WARMUP, len(ids)))
    for track_id in picks[:WARMUP]:
        conn.execute(QUERY, (track_id,), prepare=True).fetchall()
    timings = []
    for track_id in picks[WARMUP:]:
        start = time.perf_counter()
        conn.execute(QUERY, (track_id,), prepare=True).fetchall()
        timings.append((time.perf_counter() - start) * 1000)
    return refresh.seconds, sorted(timings)


def _p(sorted_ms: list[float], q: float) -> float:
    return sorted_ms[max(0, math.ceil(q * len(sorted_ms)) - 1)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--short", action="store_true", help="CI: 10k tracks")
    args = parser.parse_args(argv)
    if args.short:
        args.tracks = min(args.tracks, 10_000)
    small_n = max(args.tracks // 10, 1)
    rng = random.Random(7)
    results = []
    with bench_database() as url, psycopg.connect(libpq(url)) as conn:
        try:
            conn.execute("DELETE FROM gold_track_analytics")
            conn.execute("DELETE FROM silver_enriched_tracks WHERE identity_key LIKE 'bench|%'")
            loaded = 0
            for n in (small_n, args.tracks):
                with Timer() as load:
                    _grow(conn, loaded + 1, n)
                loaded = n
                refresh_s, ms = _measure(conn, rng)
                results.append(_p(ms, 0.95))
                print(
                    f"{n:,} gold tracks (loaded in {load.seconds:.1f} s): "
                    f"refresh_gold_materialized_views() {refresh_s:.2f} s; one track's "
                    f"suggestions p50 {_p(ms, 0.5):.2f} ms, p95 {_p(ms, 0.95):.2f} ms, "
                    f"max {ms[-1]:.2f} ms ({len(ms)} tracks)",
                    flush=True,
                )
        finally:
            conn.rollback()
    small, full = results
    print(f"p95 at {args.tracks:,} / p95 at {small_n:,} tracks = {full / small:.2f} (target ~1)")
    emit("harmonic_view", full, "ms", small, full / small)


if __name__ == "__main__":
    main()
