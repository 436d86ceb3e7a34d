"""Cost of operating the pipeline: one metrics scrape and one alert evaluation.

``python -m bench.monitoring [--in-flight N] [--silver N] [--short]``

1. **Scrape** (target < 100 ms): N tracks in flight (default 10k: one open run, N open jobs,
   5 lookups each, 2 of them answered with a latency) on top of as many answered lookups of an
   earlier run, plus N silver tracks; the whole ``songnodes_*`` exposition
   (``generate_latest``) is rendered, queue depths included when Redis is reachable (an empty
   key prefix of its own). Baseline: ``SELECT count(*) FROM enrichment_lookups`` (one pass over
   the largest table a scrape reads), in the same run.
2. **Alert evaluation** (target < 1 s): silver grown to M tracks (default 1M; ``--short``
   100k), with 5 lookups per 10 silver tracks answered in the alert window, then
   ``pipeline.alerts.evaluate``. Baseline: ``SELECT count(*) FROM silver_enriched_tracks``.
   A scrape at that size is printed too (``scrape_at_silver_ms``): not a target, the scaling.

Each figure is the median of several runs after a warm-up. Everything happens in one
transaction that is rolled back (or in a throwaway database). The last line is JSON: value =
alert evaluation ms, baseline = silver count(*) ms; ``scrape_*`` keys give the scrape figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from bench._common import bench_database

__all__ = ["main"]

SILVER = """
INSERT INTO silver_enriched_tracks (artist_name, track_title, identity_key, bpm, key, isrc,
                                    genre, data_quality_score, validation_status, enriched_at)
SELECT 'artist ' || g, 'title ' || g, 'bench|{tag}|' || g,
       CASE WHEN random() < 0.9 THEN 120 + round((random() * 10)::numeric, 2) END,
       CASE WHEN random() < 0.85 THEN (1 + (g % 12))::text || 'A' END,
       CASE WHEN random() < 0.7 THEN 'QZ' || lpad(g::text, 10, '0') END,
       CASE WHEN random() < 0.6 THEN ARRAY['house'] END,
       0.7 + round((random() * 0.3)::numeric, 2), 'valid', now()
FROM generate_series({lo}, {hi}) g
"""

BRONZE_JOBS = """
WITH b AS (
    INSERT INTO bronze_scraped_tracks (source, source_url, scraper_version, raw_json,
                                       artist_name, track_title)
    SELECT 'bench', 'https://bench.test/{tag}/' || g, 'b-1', '{{}}'::jsonb, 'a' || g, 't' || g
    FROM generate_series(1, {n}) g RETURNING id
)
INSERT INTO enrichment_jobs (run_id, bronze_track_id, status)
SELECT CAST('{run}' AS uuid), id, '{status}' FROM b
"""

LOOKUPS = """
INSERT INTO enrichment_lookups (job_id, provider, round, fields, status, api_calls, cost_usd,
                                latency_ms)
SELECT j.id, p.provider, 1, ARRAY['bpm'],
       CASE WHEN p.i <= {answered}
            THEN (ARRAY['found', 'found', 'not_found'])[1 + (random() * 2)::int]
            ELSE 'pending' END,
       CASE WHEN p.i <= {answered} THEN 1 ELSE 0 END, 0.001,
       CASE WHEN p.i <= {answered} THEN (20 + random() * 400)::int END
FROM enrichment_jobs j
CROSS JOIN (SELECT provider, row_number() OVER () AS i FROM unnest(
    ARRAY['beatport', 'spotify', 'musicbrainz', 'deezer', 'tidal']) provider) p
WHERE j.run_id = CAST('{run}' AS uuid)
"""


def _median_ms(fn: Callable[[], Any], repeat: int) -> float:
    fn()  # warm-up (plans, caches)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _run(session: Session, status: str) -> str:
    from pipeline.runs import start_run

    run = str(start_run(session, "incremental", "bench"))
    if status != "running":
        session.execute(text("SELECT complete_pipeline_run(:r, 'completed')"), {"r": run})
    return run


def _jobs(session: Session, run: str, n: int, status: str, answered: int) -> None:
    tag = uuid.uuid4().hex[:8]
    session.execute(text(BRONZE_JOBS.format(tag=tag, n=n, run=run, status=status)))
    session.execute(text(LOOKUPS.format(run=run, answered=answered)))


def _broker() -> Callable[[], dict[str, int]] | None:
    """Queue depths against local Redis under a key prefix nobody uses, if Redis answers."""
    import redis

    try:
        redis.Redis.from_url("redis://127.0.0.1:6379/12", socket_timeout=1).ping()
    except redis.RedisError:
        return None
    from pipeline.metrics import BrokerProbe
    from tasks.app import app

    app.conf.broker_url = "redis://127.0.0.1:6379/12"
    app.conf.broker_transport_options = {"global_keyprefix": f"sn-bench-{uuid.uuid4().hex[:8]}:"}
    return BrokerProbe(app)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--in-flight", type=int, default=10_000)
    parser.add_argument("--silver", type=int, default=1_000_000)
    parser.add_argument("--short", action="store_true", help="CI: 100k silver tracks")
    args = parser.parse_args(argv)
    silver_n = 100_000 if args.short else args.silver
    repeat = 5 if args.short else 9

    from prometheus_client import generate_latest

    from pipeline.alerts import evaluate
    from pipeline.metrics import make_registry

    with bench_database() as url:
        engine = create_engine(url)
        with engine.connect() as conn:
            outer = conn.begin()
            session = Session(bind=conn, join_transaction_mode="create_savepoint")

            @contextmanager
            def factory() -> Iterator[Session]:
                yield session

            t0 = time.perf_counter()
            _jobs(session, _run(session, "completed"), args.in_flight, "merged", answered=5)
            _jobs(session, _run(session, "running"), args.in_flight, "enriching", answered=2)
            tag = uuid.uuid4().hex[:8]
            session.execute(text(SILVER.format(tag=tag, lo=1, hi=args.in_flight)))
            session.execute(text("ANALYZE"))
            print(f"loaded {args.in_flight} tracks in flight in {time.perf_counter() - t0:.1f} s")
            broker = _broker()
            registry = make_registry(factory, broker=broker)
            body = generate_latest(registry)
            scrape = _median_ms(lambda: generate_latest(registry), repeat)
            scrape_base = _median_ms(
                lambda: session.execute(text("SELECT count(*) FROM enrichment_lookups")).all(),
                repeat,
            )
            print(
                f"scrape: {scrape:.1f} ms ({len(body) // 1024} KiB, queue depths "
                f"{'from Redis' if broker else 'skipped: no Redis'}) vs lookups count(*) "
                f"{scrape_base:.1f} ms; target < 100 ms"
            )

            t0 = time.perf_counter()
            step = 200_000
            for lo in range(args.in_flight + 1, silver_n + 1, step):
                hi = min(lo + step - 1, silver_n)
                session.execute(text(SILVER.format(tag=tag, lo=lo, hi=hi)))
            extra = max(silver_n // 10 - args.in_flight, 0)
            if extra:
                _jobs(session, _run(session, "completed"), extra, "merged", answered=5)
            session.execute(text("ANALYZE"))
            n = session.execute(text("SELECT count(*) FROM silver_enriched_tracks")).scalar_one()
            lookups = session.execute(text("SELECT count(*) FROM enrichment_lookups")).scalar()
            print(f"loaded {n} silver tracks, {lookups} lookups in "
                  f"{time.perf_counter() - t0:.1f} s")  # fmt: skip
            # Not a target, the scaling: a scrape reads enrichment_lookups in full (its counters
            # are sums over the whole history), so its cost grows with that table.
            big_scrape = _median_ms(lambda: generate_latest(registry), 3)
            print(f"scrape with {lookups} lookups and {n} silver tracks: {big_scrape:.1f} ms")
            evaluation = _median_ms(lambda: evaluate(session), repeat)
            base = _median_ms(
                lambda: session.execute(text("SELECT count(*) FROM silver_enriched_tracks")).all(),
                repeat,
            )
            print(
                f"alert evaluation at {n} silver tracks: {evaluation:.1f} ms vs silver count(*) "
                f"{base:.1f} ms; target < 1000 ms"
            )
            session.close()
            outer.rollback()
        engine.dispose()
    print(
        json.dumps(
            {
                "bench": "monitoring",
                "value": round(evaluation, 3),
                "unit": "ms",
                "baseline": round(base, 3),
                "ratio": round(evaluation / base, 3),
                "silver_tracks": n,
                "scrape_ms": round(scrape, 3),
                "scrape_baseline_ms": round(scrape_base, 3),
                "scrape_ratio": round(scrape / scrape_base, 3),
                "scrape_at_silver_ms": round(big_scrape, 3),
                "in_flight": args.in_flight,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
