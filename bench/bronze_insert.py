"""Bronze bulk append throughput vs a plain COPY of the same rows.

``python -m bench.bronze_insert [--rows N]``: appends N bronze track rows through
``db.bronze.append_bronze_tracks`` (COPY to staging + INSERT ... ON CONFLICT DO NOTHING
RETURNING, i.e. idempotent and duplicate-aware) in batches, then COPYs the same rows into a
scratch copy of the table (same columns, defaults, generated hash, indexes and unique key;
no triggers, which only fire on UPDATE/DELETE anyway) as the baseline. ratio = ours / baseline
(target >= 0.5). Everything is rolled back.
"""

from __future__ import annotations

import argparse
import random
from typing import Any

import psycopg

from bench._common import Timer, bench_database, emit, libpq

__all__ = ["main", "make_rows"]

COLUMNS = ("source", "source_url", "source_track_id", "scraper_version", "raw_json",
           "artist_name", "track_title", "position")  # fmt: skip


def make_rows(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """Realistic-ish scraped track rows (about a third without a source_track_id)."""
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        artist, title = f"Artist {rnd.randrange(5000)}", f"Track {i} (Original Mix)"
        rows.append(
            {
                "source": rnd.choice(("1001tracklists", "mixesdb")),
                "source_url": f"https://example.test/tracklist/{i // 20}",
                "source_track_id": None if i % 3 == 0 else f"t{i}",
                "scraper_version": "bench-1",
                "raw_json": {
                    "artist": artist,
                    "title": title,
                    "bpm": round(rnd.uniform(118, 176), 1),
                    "key": f"{rnd.randrange(1, 13)}{rnd.choice('AB')}",
                    "label": "Bench Records",
                    "position": i % 20 + 1,
                },
                "artist_name": artist,
                "track_title": title,
                "position": i % 20 + 1,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--short", action="store_true", help="CI: 20k rows")
    args = parser.parse_args(argv)
    if args.short:
        args.rows = min(args.rows, 20_000)

    from db.bronze import append_bronze_tracks

    rows = make_rows(args.rows)
    with bench_database() as url, psycopg.connect(libpq(url)) as conn:
        try:
            with Timer() as ours:
                inserted = 0
                for start in range(0, len(rows), args.batch):
                    ids = append_bronze_tracks(conn, rows[start : start + args.batch])
                    inserted += sum(1 for i in ids if i is not None)
            conn.execute("CREATE TABLE bench_copy (LIKE bronze_scraped_tracks INCLUDING ALL)")
            copy_sql = f"COPY bench_copy ({', '.join(COLUMNS)}) FROM STDIN"
            with Timer() as base, conn.cursor() as cur, cur.copy(copy_sql) as copy:
                copy.set_types(["text", "text", "text", "text", "jsonb", "text", "text", "int4"])
                for row in rows:
                    copy.write_row([row[c] for c in COLUMNS])
        finally:
            conn.rollback()
    ours_rate, base_rate = args.rows / ours.seconds, args.rows / base.seconds
    print(f"append_bronze_tracks: {args.rows} rows ({inserted} new) in {ours.seconds:.2f}s")
    print(f"append_bronze_tracks: {ours_rate:,.0f} rows/s")
    print(f"plain COPY baseline:  {base_rate:,.0f} rows/s")
    emit("bronze_insert", ours_rate, "rows/s", base_rate, ours_rate / base_rate)


if __name__ == "__main__":
    main()
