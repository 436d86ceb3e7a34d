"""Replay from stored responses vs the live pipeline, on the same tracks, in one run.

    python -m bench.replay            # 10k tracks
    python -m bench.replay --short    # CI: 300 tracks, well under a minute

1. Live (baseline): N catalogue tracks go through the real pipeline (ingest -> lookups against the
   sandbox at 0 ms latency -> merge -> gold) on the in-process worker; tracks/s from the first
   enqueue to the last merged job.
2. Replay: the same N bronze rows are queued in ``pipeline_replay_queue`` (default mode: stored
   responses) and re-merged; tracks/s from the INSERT to the last completed row. The sandbox's
   request counters must not move (provider calls made by replay = 0).

A throwaway database (``bench._common.bench_database``); no broker, no Redis (in-process worker,
in-memory rate limits). Last line: ``{"bench": "replay", "value": ..., "ratio": replay/live}``.
"""

from __future__ import annotations

import argparse
import csv
import os
import time
import uuid
from pathlib import Path
from typing import Any

from bench._common import bench_database, emit

ROOT = Path(__file__).resolve().parents[1]
CATALOGUE = ROOT / "providers" / "sandbox" / "data" / "catalogue.csv"


def _envelopes(n: int, tag: str) -> list[dict[str, Any]]:
    with CATALOGUE.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(line for line in fh if not line.startswith("#")))
    out = []
    for i in range(n):
        r = rows[i % len(rows)]
        out.append(
            {
                "kind": "track",
                "source": "bench-replay",
                "source_url": f"https://example.test/bench/{tag}/{i}",
                "source_track_id": f"{tag}-{i}",
                "scraper_version": "bench-1",
                "artist_name": r["artist"],
                "track_title": r["title"],
                "raw_json": {"artist": r["artist"], "title": r["title"], "n": i},
            }
        )
    return out


def _calls(handle: Any) -> int:
    return sum(sum(v.values()) for v in handle.stats().values())


SILVER_FIELDS = ("bpm", "key", "isrc", "genre", "release_date")


def _silver_values(session: Any) -> dict[str, tuple[Any, ...]]:
    from sqlalchemy import text

    rows = session.execute(
        text(f"SELECT id, {', '.join(SILVER_FIELDS)} FROM silver_enriched_tracks")
    )
    return {str(r[0]): tuple(r[1:]) for r in rows}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="300 tracks (CI)")
    parser.add_argument("--tracks", type=int, default=None)
    args = parser.parse_args(argv)
    n = args.tracks or (300 if args.short else 10_000)

    for key in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "REDIS_URL"):
        os.environ.pop(key, None)
    from providers.registry import available_providers
    from providers.sandbox import start_in_thread

    handle = start_in_thread()
    os.environ.update(handle.env)
    for name in available_providers():
        os.environ[f"SONGNODES_{name.upper()}_RATE_LIMIT_PER_SECOND"] = "100000"
    try:
        with bench_database() as url:
            os.environ["DATABASE_URL"] = url
            _run(n, handle)
    finally:
        handle.stop()


def _run(n: int, handle: Any) -> None:
    from sqlalchemy import text

    from db.engine import dispose_engine, session_scope
    from pipeline.cli.pipeline_cmds import run_ingest
    from pipeline.lookups.clients import reset_clients
    from pipeline.progress import wait_until
    from pipeline.runtime import worker_context

    dispose_engine()
    reset_clients()
    tag = f"bench-replay:{uuid.uuid4().hex[:8]}"
    messages: list[Any] = list(_envelopes(n, tag))
    started = time.perf_counter()
    if not run_ingest(messages, tag, wait=True, timeout_s=3600):
        raise SystemExit("live pipeline did not finish")
    live_s = time.perf_counter() - started
    live_calls = _calls(handle)
    with session_scope() as session:
        bronze = [
            str(r[0])
            for r in session.execute(
                text(
                    "SELECT j.bronze_track_id FROM enrichment_jobs j JOIN "
                    "enrichment_pipeline_runs r ON r.id = j.run_id WHERE r.triggered_by = :t"
                ),
                {"t": tag},
            )
        ]
        before = _silver_values(session)
    live_rate = len(bronze) / live_s
    print(f"live: {len(bronze)} tracks in {live_s:.1f} s = {live_rate:.1f} tracks/s, "
          f"{live_calls} provider requests")  # fmt: skip

    with worker_context(concurrency=8):
        from tasks.replay import drain_replay_queue

        started = time.perf_counter()
        with session_scope() as session:
            qids = [
                str(
                    session.execute(
                        text(
                            "INSERT INTO pipeline_replay_queue (bronze_ids, requested_by, reason)"
                            " VALUES (CAST(:ids AS text[]), 'bench', 'bench.replay') RETURNING id"
                        ),
                        {"ids": bronze[i : i + 250]},
                    ).scalar_one()
                )
                for i in range(0, len(bronze), 250)
            ]
        drain_replay_queue.delay()

        def done() -> bool:
            with session_scope() as session:
                left = session.execute(
                    text(
                        "SELECT count(*) FROM pipeline_replay_queue "
                        "WHERE id = ANY(CAST(:ids AS uuid[])) AND status NOT IN "
                        "('completed', 'failed')"
                    ),
                    {"ids": qids},
                ).scalar_one()
            return bool(left == 0)

        if not wait_until(done, 3600, 0.1):
            raise SystemExit("replay did not finish")
        replay_s = time.perf_counter() - started
    replay_calls = _calls(handle) - live_calls
    with session_scope() as session:
        statuses: dict[str, int] = dict(
            session.execute(
                text(
                    "SELECT status, count(*) FROM pipeline_replay_queue "
                    "WHERE id = ANY(CAST(:ids AS uuid[])) GROUP BY status"
                ),
                {"ids": qids},
            ).all()
        )
        after = _silver_values(session)
    rate = len(bronze) / replay_s
    print(f"replay (stored responses): {len(bronze)} tracks in {replay_s:.1f} s = "
          f"{rate:.1f} tracks/s; requests {statuses}")  # fmt: skip
    print(f"provider calls made by replay: {replay_calls} (must be 0)")
    changed = sorted(k for k in before if before[k] != after.get(k))
    print(
        f"silver values identical after replay: {not changed} ({len(changed)} of {len(before)} "
        "tracks differ)"
    )
    for key in changed[:5]:
        print(f"  {key}: live {before[key]} -> replay {after.get(key)}")
    if replay_calls:
        raise SystemExit("replay called providers")
    emit("replay", rate, "tracks/s", live_rate, rate / live_rate)


if __name__ == "__main__":
    main()
