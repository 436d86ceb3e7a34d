"""Repeated sightings (issue 17): scraped DJ data is mostly repeats; each track is enriched once.

    python -m bench.sightings            # 20k bronze rows of 4k distinct tracks
    python -m bench.sightings --short    # CI: 2k rows of 400 tracks (~2 min)

Input: ``--rows`` bronze rows drawn from ``--distinct`` catalogue tracks with Zipf popularity
(rank k weighs 1/k^1.1, seeded), arriving as setlists do: setlists of 20 entries, 10 setlists
per ``ingest_batch`` message, every message queued at once. Everything is real (the harness of
bench/pipeline.py, reused): a ``celery worker`` subprocess, a throwaway migrated database, every
HTTP provider served by the sandbox at 0 ms. Baseline: bench/pipeline.py's no-op tasks/s,
measured in the same run on the same worker.

Passes:

1. first sightings: provider calls per bronze row and per distinct track, bronze rows/s end to
   end (first enqueue -> every run closed and every setlist in gold) and its ratio to no-op
   tasks/s (target 0.35);
2. re-scrape: the same setlists again under new URLs: provider calls (target 0);
3. limited: every provider limited to its real limit x ``--limit-factor``
   (providers/settings.py), workers laid out as docker-compose.yml deploys them (a general
   worker, and a one-process worker for each ``--dedicated`` provider), fresh tracks (Zipf
   again): distinct tracks/s against the bound the most constrained provider sets (its limit /
   the calls per track it received; target 0.9).

Then database bytes per bronze row (``pg_database_size``: every table and index, the empty
schema included) and lineage rows per bronze row. Last line JSON, ``ratio`` = rows/s / no-op.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench.pipeline import (
    CATALOGUE,
    CpuMeter,
    _progress,
    noop_throughput,
    throwaway_database,
    worker_process,
)
from pipeline.runtime import ALL_QUEUES
from tasks.app import app

__all__ = ["main", "setlists", "zipf_sightings"]

SETLIST = 20
SETLISTS_PER_MESSAGE = 10
ZIPF_S = 1.1


def _catalogue() -> list[dict[str, str]]:
    with CATALOGUE.open(encoding="utf-8") as fh:
        return list(csv.DictReader(line for line in fh if not line.startswith("#")))


def zipf_sightings(rows: int, distinct: int, seed: int) -> list[int]:
    """``rows`` track ranks in 0..distinct-1, rank k drawn with weight 1/(k+1)^1.1; every
    rank appears at least once (so exactly ``distinct`` tracks are seen)."""
    rng = random.Random(seed)
    weights = [1 / (k + 1) ** ZIPF_S for k in range(distinct)]
    drawn = list(range(distinct)) + rng.choices(range(distinct), weights, k=rows - distinct)
    rng.shuffle(drawn)
    return drawn


def setlists(ranks: list[int], offset: int, nonce: str, label: str) -> list[dict[str, Any]]:
    """Setlist envelopes of ``SETLIST`` entries; distinct track ``k`` is catalogue row
    ``offset + k`` (past the catalogue a ``(bench N)`` suffix keeps it distinct)."""
    catalogue = _catalogue()
    out = []
    for n, start in enumerate(range(0, len(ranks), SETLIST)):
        tracks = []
        for position, k in enumerate(ranks[start : start + SETLIST], start=1):
            i = offset + k
            row = catalogue[i % len(catalogue)]
            cycle = i // len(catalogue)
            title = row["title"] if cycle == 0 else f"{row['title']} (bench {cycle})"
            tracks.append({"position": position, "artist": row["artist"], "title": title})
        out.append(
            {
                "kind": "playlist",
                "source": "bench-setlists",
                "source_url": f"https://bench.songnodes.invalid/{nonce}/{label}/{n}",
                "scraper_version": "bench-1.0",
                "playlist_name": f"bench set {nonce} {label} {n}",
                "artist_name": f"bench dj {n % 50}",
                "event_date": "2025-10-29",
                "raw_json": {"tracks": tracks},
            }
        )
    return out


_STATS = """
SELECT count(*) AS rows, count(DISTINCT j.silver_track_id) AS tracks,
       coalesce(sum(l.calls), 0) AS calls, max(j.merged_at) AS last
FROM enrichment_jobs j JOIN enrichment_pipeline_runs r ON r.id = j.run_id
LEFT JOIN (SELECT job_id, sum(api_calls) AS calls FROM enrichment_lookups GROUP BY job_id) l
  ON l.job_id = j.id
WHERE r.triggered_by = %(t)s
"""

_CALLS_BY_PROVIDER = """
SELECT l.provider, sum(l.api_calls) FROM enrichment_lookups l
JOIN enrichment_jobs j ON j.id = l.job_id JOIN enrichment_pipeline_runs r ON r.id = j.run_id
WHERE r.triggered_by = %(t)s GROUP BY l.provider
"""

# Per provider: when its lookups were recorded (seconds after the pass began), how many per
# tenth of the pass, and how many failed: where a limited pass spends its time.
_TIMELINE = """
SELECT l.provider, count(*) FILTER (WHERE l.status = 'failed') AS failed,
       extract(epoch FROM min(l.updated_at)) - %(t0)s AS first,
       extract(epoch FROM max(l.updated_at)) - %(t0)s AS last,
       array_agg(extract(epoch FROM l.updated_at) - %(t0)s) AS at
FROM enrichment_lookups l
JOIN enrichment_jobs j ON j.id = l.job_id JOIN enrichment_pipeline_runs r ON r.id = j.run_id
WHERE r.triggered_by = %(t)s AND l.api_calls > 0 GROUP BY l.provider ORDER BY l.provider
"""

# After the last answer: when the pass's last job merged, its last setlist reached gold, the
# last track's gold row (appearances, paid debounced) and the last artist aggregate were paid
# (seconds after the first message).
_TAIL = """
SELECT (SELECT extract(epoch FROM max(j.merged_at)) FROM enrichment_jobs j
          JOIN enrichment_pipeline_runs r ON r.id = j.run_id WHERE r.triggered_by = %(t)s)
         - %(t0)s AS merged,
       (SELECT extract(epoch FROM max(updated_at)) FROM gold_playlist_analytics
          WHERE playlist_name LIKE %(p)s) - %(t0)s AS setlists,
       (SELECT extract(epoch FROM max(last_analyzed_at)) FROM gold_track_analytics)
         - %(t0)s AS tracks,
       (SELECT extract(epoch FROM max(updated_at)) FROM gold_artist_analytics) - %(t0)s AS artists
"""

# How long a job that asked a provider waited between its last recorded lookup and its merge
# (a sighting that waited for another's lookups, single flight, asked none and is left out),
# and when the last lookup of those jobs was recorded.
_MERGE_LAG = """
SELECT percentile_cont(ARRAY[0.5, 0.95, 1.0]) WITHIN GROUP (ORDER BY lag),
       max(last_lookup) - %(t0)s
FROM (SELECT extract(epoch FROM j.merged_at - max(l.updated_at)) AS lag,
             extract(epoch FROM max(l.updated_at)) AS last_lookup
      FROM enrichment_jobs j JOIN enrichment_pipeline_runs r ON r.id = j.run_id
      JOIN enrichment_lookups l ON l.job_id = j.id
      WHERE r.triggered_by = %(t)s AND j.merged_at IS NOT NULL GROUP BY j.id
      HAVING sum(l.api_calls) > 0) x
"""


def print_timeline(conn: Any, tag: str, wall0: float, seconds: float, pattern: str) -> None:
    """Each provider's recorded lookups over the pass: first and last (seconds after the
    first message), lookups per tenth of the pass, failures."""
    for provider, failed, first, last, at in conn.execute(_TIMELINE, {"t": tag, "t0": wall0}):
        tenths = [0] * 10
        for a in at:
            tenths[min(9, max(0, int(float(a) / seconds * 10)))] += 1
        print(
            f"{'':<16} {provider:<14} answers from {float(first):6.1f} to {float(last):6.1f} s "
            f"of {seconds:.1f}; per tenth {tenths}; failed {failed}",
            flush=True,
        )
    tail = conn.execute(_TAIL, {"t": tag, "t0": wall0, "p": pattern}).fetchone()
    merged, sets, tracks, artists = (float(v or 0) for v in tail)
    print(
        f"{'':<16} last job merged at {merged:.1f} s, last setlist in gold at {sets:.1f} s, "
        f"last track row paid at {tracks:.1f} s, last artist aggregate paid at {artists:.1f} s",
        flush=True,
    )
    lags, last_lookup = conn.execute(_MERGE_LAG, {"t": tag, "t0": wall0}).fetchone()
    if lags:
        p50, p95, worst = (float(v) for v in lags)
        print(
            f"{'':<16} last lookup at {float(last_lookup):.1f} s; last lookup to "
            f"merge per job that asked: p50 {p50:.2f} s, p95 {p95:.2f} s, max {worst:.2f} s",
            flush=True,
        )
    conn.commit()


_PLAYLISTS_IN_GOLD = """
SELECT count(*) FROM gold_playlist_analytics WHERE playlist_name LIKE %(p)s
"""
# Artist aggregates and track appearances are paid after their setlists reach gold (migrations
# 019, 023): a pass ends when none is owed.
_OWED = (
    "SELECT (SELECT count(*) FROM gold_artist_refresh_queue)"
    " + (SELECT count(*) FROM gold_track_refresh_queue)"
)


def run_sightings(
    conn: Any, name: str, messages: list[dict[str, Any]], meter: CpuMeter
) -> dict[str, Any]:
    """Queue every message at once, wait until every run is closed, every job done and every
    setlist in gold (a setlist reaches gold once all its tracks are merged, with their gold
    rows: a sighting only linked to its track changes gold through its setlist); return rows,
    distinct tracks, provider calls and seconds."""
    from tasks.ingest import ingest_batch

    tag = f"bench-sightings:{name}:{uuid.uuid4().hex[:8]}"
    batches = [
        messages[i : i + SETLISTS_PER_MESSAGE]
        for i in range(0, len(messages), SETLISTS_PER_MESSAGE)
    ]
    meter.start()
    wall0 = time.time()
    for batch in batches:
        ingest_batch.apply_async((batch, tag, "bench"))
    stall_s, last_seen = 180.0, None
    deadline = time.monotonic() + stall_s
    pattern = messages[0]["playlist_name"].rsplit(" ", 1)[0] + " %"
    while True:
        created, running, open_jobs = _progress(conn, tag)
        row = conn.execute(_PLAYLISTS_IN_GOLD, {"p": pattern}).fetchone()
        owed_row = conn.execute(_OWED).fetchone()
        conn.commit()
        gold = int(row[0]) if row else 0
        owed = int(owed_row[0]) if owed_row else 0
        seen = (created, running, open_jobs, gold, owed)
        if seen != last_seen:  # gold catching up is progress
            last_seen, deadline = seen, time.monotonic() + stall_s
        done = created >= len(batches) and running == 0 and open_jobs == 0
        if done and gold >= len(messages) and owed == 0:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name}: no progress for {stall_s:.0f} s ({open_jobs} jobs open)")
        # Poll every 1% of the time so far (0.25 to 2 s): the progress query reads every job of
        # the pass, and at 0.25 s it was a visible share of PostgreSQL's work in the 20k run.
        time.sleep(min(2.0, max(0.25, (time.time() - wall0) / 100)))
    seconds = time.time() - wall0
    meter.stop()
    print_timeline(conn, tag, wall0, seconds, pattern)
    rows, tracks, calls, _ = conn.execute(_STATS, {"t": tag}).fetchone()
    by_provider = dict(conn.execute(_CALLS_BY_PROVIDER, {"t": tag}).fetchall())
    conn.commit()
    result: dict[str, Any] = {
        "rows": int(rows),
        "tracks": int(tracks),
        "calls": int(calls),
        "seconds": seconds,
        "by_provider": {k: int(v) for k, v in by_provider.items()},
    }
    print(
        f"{name:<16} {result['rows']:>6} rows {result['tracks']:>5} tracks {seconds:7.1f} s "
        f"{result['rows'] / seconds:7.1f} rows/s  calls {result['calls']:>6} "
        f"({result['calls'] / max(result['rows'], 1):.3f}/row, "
        f"{result['calls'] / max(result['tracks'], 1):.2f}/track)\n"
        f"{'':<16} CPU per row {meter.per_item_ms(result['rows'])}",
        flush=True,
    )
    return result


def real_limits() -> dict[str, float]:
    """Each HTTP provider's real per-second limit (providers/settings.py defaults)."""
    from providers.settings import SETTINGS_CLASSES

    out = {}
    for name, cls in SETTINGS_CLASSES.items():
        limit = cls.model_fields["rate_limit_per_second"].default
        if limit:
            out[name] = float(limit)
    return out


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--short", action="store_true", help="CI: 2k rows of 400 tracks")
    p.add_argument("--rows", type=int, help="bronze rows of the first pass (default 20000)")
    p.add_argument("--distinct", type=int, help="distinct tracks among them (default 4000)")
    p.add_argument("--limited-distinct", type=int, help="distinct tracks, limited pass")
    p.add_argument("--limit-factor", type=float, default=10.0, help="real limit x this")
    p.add_argument("--noop-tasks", type=int, help="no-op tasks per baseline drain")
    p.add_argument("--concurrency", type=int, default=4, help="worker prefork processes")
    p.add_argument(
        "--limited-concurrency", type=int, default=8, help="prefork processes, limited pass"
    )
    p.add_argument(
        "--dedicated",
        default="beatport,musicbrainz,discogs",
        help="providers given a one-process worker of their own in the limited pass, as\n"
        "docker-compose.yml deploys them (the 1/s providers most tracks reach; '' = one\n"
        "worker on every queue)",
    )
    p.add_argument("--broker-db", type=int, default=14, help="Redis db of the broker")
    p.add_argument("--state-db", type=int, default=15, help="Redis db of limits/breakers")
    p.add_argument("--redis", default="redis://127.0.0.1:6379", help="Redis server URL")
    args = p.parse_args(argv)
    args.rows = args.rows or (2_000 if args.short else 20_000)
    args.distinct = args.distinct or (400 if args.short else 4_000)
    args.limited_distinct = args.limited_distinct or (100 if args.short else 1_000)
    args.noop_tasks = args.noop_tasks or (1_000 if args.short else 5_000)
    return args


def main(argv: list[str] | None = None) -> None:
    import psycopg
    import redis

    from bench._common import libpq
    from providers.ratelimit import granted_per_second
    from providers.registry import available_providers
    from providers.sandbox import start_in_thread

    args = _args(argv)
    broker_url, state_url = f"{args.redis}/{args.broker_db}", f"{args.redis}/{args.state_db}"
    broker, state = redis.Redis.from_url(broker_url), redis.Redis.from_url(state_url)
    for client in (broker, state):
        client.flushdb()
    app.conf.broker_url = broker_url
    app.conf.result_backend = None
    log = Path(tempfile.mkdtemp(prefix="sn-bench-sightings-")) / "worker.log"
    sandbox = start_in_thread()
    nonce = uuid.uuid4().hex[:8]
    t_total = time.perf_counter()
    ranks = zipf_sightings(args.rows, args.distinct, seed=17)
    limited_ranks = zipf_sightings(
        args.limited_distinct * args.rows // args.distinct, args.limited_distinct, seed=18
    )
    try:
        with throwaway_database() as url:
            env = dict(os.environ) | sandbox.env
            env |= {
                "DATABASE_URL": url,
                "CELERY_BROKER_URL": broker_url,
                "REDIS_URL": state_url,
                "SONGNODES_LOG_FORMAT": "json",
            }
            env.pop("CELERY_RESULT_BACKEND", None)
            free = dict(env)
            for name in available_providers():
                free[f"SONGNODES_{name.upper()}_RATE_LIMIT_PER_SECOND"] = "10000"
            print(
                f"worker: prefork -c {args.concurrency}, broker {broker_url}, state {state_url}; "
                f"database {url.rsplit('/', 1)[-1]}; {args.rows} rows of {args.distinct} tracks "
                f"(Zipf s={ZIPF_S}); log {log}",
                flush=True,
            )
            with psycopg.connect(libpq(url)) as conn:
                with worker_process(free, args.concurrency, log) as pid:
                    drains = noop_throughput(broker, args.noop_tasks, CpuMeter(pid))
                    noop_tps = statistics.median(drains)
                    print(f"no-op: {noop_tps:.1f} tasks/s (median of {drains})", flush=True)
                    first = run_sightings(
                        conn, "first sightings", setlists(ranks, 0, nonce, "a"), CpuMeter(pid)
                    )
                    again = run_sightings(
                        conn, "re-scrape", setlists(ranks, 0, nonce, "b"), CpuMeter(pid)
                    )
                state.flushdb()  # limiter state of the free worker
                limits = {p: v * args.limit_factor for p, v in real_limits().items()}
                limited_env = dict(env) | {
                    f"SONGNODES_{p.upper()}_RATE_LIMIT_PER_SECOND": f"{v:g}"
                    for p, v in limits.items()
                }
                # Lookups waiting on a provider's limit sleep in the limiter and hold their
                # process. The deployment docker-compose.yml describes gives each provider at
                # its limit a worker of its own, so those sleeps never take the general
                # worker's processes from the other providers, merges and gold.
                dedicated = [p for p in args.dedicated.split(",") if p]
                general = [q for q in ALL_QUEUES if q not in {f"provider.{p}" for p in dedicated}]
                general_c = max(1, args.limited_concurrency - len(dedicated))
                print(
                    f"limited pass: general worker -c {general_c}; dedicated -c 1 workers: "
                    f"{', '.join(dedicated) or 'none'}",
                    flush=True,
                )
                with ExitStack() as workers:
                    pids = [
                        workers.enter_context(worker_process(limited_env, general_c, log, general))
                    ]
                    for provider in dedicated:
                        pids.append(
                            workers.enter_context(
                                worker_process(limited_env, 1, log, [f"provider.{provider}"])
                            )
                        )
                    offset = args.distinct  # tracks no earlier pass saw
                    limited = run_sightings(
                        conn,
                        "limited",
                        setlists(limited_ranks, offset, nonce, "c"),
                        CpuMeter(*pids),
                    )
                sizes = conn.execute(
                    "SELECT pg_database_size(current_database()), "
                    "(SELECT count(*) FROM bronze_scraped_tracks), "
                    "(SELECT count(*) FROM enrichment_transformations)"
                ).fetchone()
                assert sizes is not None
                size, bronze, lineage = sizes
    finally:
        sandbox.stop()
        for client in (broker, state):
            client.flushdb()
    rows_per_s = first["rows"] / first["seconds"]
    ratio = rows_per_s / noop_tps
    tracks = max(limited["tracks"], 1)
    bounds = {
        p: limits[p] / (calls / tracks)
        for p, calls in limited["by_provider"].items()
        if p in limits and calls
    }
    tightest = min(bounds, key=lambda p: bounds[p]) if bounds else None
    bound = bounds[tightest] if tightest else float("nan")
    # What our own limiter lets through (its 3% safety margin in whole requests per window,
    # from 34/s up): the ceiling the pipeline can reach against the provider's bound.
    granted = {
        p: granted_per_second(limits[p]) / (calls / tracks)
        for p, calls in limited["by_provider"].items()
        if p in limits and calls
    }
    granted_bound = min(granted.values()) if granted else float("nan")
    limited_tps = limited["tracks"] / limited["seconds"]
    print(
        f"provider calls: {first['calls'] / first['rows']:.3f} per bronze row, "
        f"{first['calls'] / max(first['tracks'], 1):.2f} per distinct track"
    )
    print(
        f"end to end: {rows_per_s:.1f} bronze rows/s vs no-op {noop_tps:.1f} tasks/s = "
        f"{ratio:.3f} (target >= 0.35)"
    )
    print(f"re-scrape of the same {again['rows']} rows: {again['calls']} provider calls (target 0)")
    print(
        f"limited (real limits x {args.limit_factor:g}): {limited_tps:.2f} distinct tracks/s vs "
        f"bound {bound:.2f} set by {tightest} ({limits.get(tightest or '', 0):g}/s, "
        f"{limited['by_provider'].get(tightest or '', 0) / tracks:.2f} calls/track) = "
        f"{limited_tps / bound:.3f} (target >= 0.9); against what our limiter grants "
        f"({granted_bound:.2f} tracks/s): {limited_tps / granted_bound:.3f}"
    )
    print(
        f"database: {size / bronze:,.0f} bytes per bronze row ({size / 1e6:.1f} MB, {bronze} rows),"
        f" {lineage / bronze:.1f} enrichment_transformations rows per bronze row; "
        f"whole bench {time.perf_counter() - t_total:.0f} s"
    )
    # bench._common.emit's keys, and this bench's other measures beside them.
    print(
        json.dumps(
            {
                "bench": "sightings",
                "value": round(rows_per_s, 3),
                "unit": "rows/s",
                "baseline": round(noop_tps, 3),
                "calls_per_row": round(first["calls"] / first["rows"], 4),
                "calls_per_track": round(first["calls"] / max(first["tracks"], 1), 3),
                "rescrape_calls": again["calls"],
                "limited_ratio": round(limited_tps / bound, 3),
                "limited_ratio_granted": round(limited_tps / granted_bound, 3),
                "bytes_per_row": round(size / bronze),
                "rows": first["rows"],
                "ratio": round(ratio, 3),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
