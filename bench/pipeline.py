"""End-to-end pipeline throughput against a no-op Celery task on the same broker and worker.

    python -m bench.pipeline                 # 10k tracks, gold refresh at 1M silver rows
    python -m bench.pipeline --short         # CI: ~300 tracks, gold part at 10k rows

Everything is real: a ``celery worker`` subprocess (prefork, ``-Q`` every queue) on a Redis
broker database of its own, a throwaway PostgreSQL database migrated by the real migrations, and
every HTTP provider served by the sandbox (simulated values) in this process, first at 0 ms and
then at 50 ms latency. Passes (fresh tracks each):

1. sequential waterfall, 0 ms: end-to-end tracks/s (first enqueue -> last gold row), provider
   calls per track, p50/p95 ingest-to-gold latency (bronze ``created_at`` -> gold
   ``last_analyzed_at``);
2. sequential, 50 ms; 3. ``waterfall_mode = 'parallel'`` for every field, 50 ms.

Baseline: ``bench.noop`` tasks/s. The tasks are queued first on a queue the worker does not
consume, then the worker is told to consume it (``add_consumer``), and the clock stops when the
queue and the unacked set are empty: broker + worker overhead only, no publisher in the loop.
The median of three such drains (one drain alone moved by up to a third between runs).
Then the gold part: N synthetic silver+gold rows (realistic key/BPM spread) loaded with
``generate_series``, ``refresh_gold_materialized_views()`` timed, and 100 harmonic-suggestion
queries for random tracks. Peak worker memory (RSS and PSS summed over the process tree) is
sampled throughout. CPU per track (and per no-op task) is printed split between the worker tree,
the local PostgreSQL server and this process (bench + sandbox): on a saturated machine
tracks/s is roughly the cores divided by it, and it moves about half as much between runs.
Cleanup always: worker killed, database dropped, Redis databases flushed.
"""

from __future__ import annotations

import argparse
import csv
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.app import app

__all__ = [
    "CATALOGUE",
    "CpuMeter",
    "_progress",
    "app",
    "envelopes",
    "main",
    "noop",
    "noop_throughput",
    "throwaway_database",
    "worker_process",
]

ROOT = Path(__file__).resolve().parents[1]
CATALOGUE = ROOT / "providers" / "sandbox" / "data" / "catalogue.csv"
NOOP_QUEUE = "bench.noop"
INGEST_BATCH = 200


@app.task(name="bench.noop", ignore_result=True)
def noop() -> None:
    """Does nothing: its throughput is the broker + worker ceiling."""


# --------------------------------------------------------------------------------------- input


def envelopes(count: int, offset: int, nonce: str) -> list[dict[str, Any]]:
    """``count`` unique track envelopes cycling over the catalogue from ``offset``.

    Past the catalogue a ``(bench N)`` suffix keeps titles unique; such tracks mostly end
    ``not_found`` at every provider, which is realistic and exercises the whole waterfall.
    """
    with CATALOGUE.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(line for line in fh if not line.startswith("#")))
    out = []
    for i in range(offset, offset + count):
        row = rows[i % len(rows)]
        cycle = i // len(rows)
        title = row["title"] if cycle == 0 else f"{row['title']} (bench {cycle})"
        out.append(
            {
                "kind": "track",
                "source": "bench",
                "source_url": f"https://bench.songnodes.invalid/{nonce}/{i}",
                "source_track_id": f"{nonce}-{i}",
                "scraper_version": "bench-1.0",
                "scraped_at": "2025-10-29T12:00:00Z",
                "artist_name": row["artist"],
                "track_title": title,
                "raw_json": {"artist": row["artist"], "title": title, "i": i},
            }
        )
    return out


# ------------------------------------------------------------------------------------ services


@contextmanager
def throwaway_database() -> Iterator[str]:
    """A fresh database migrated by the real migrations, dropped afterwards (never DATABASE_URL:
    this bench commits and would leave rows behind)."""
    from bench._common import bench_database

    saved = os.environ.pop("DATABASE_URL", None)
    try:
        with bench_database() as url:
            yield url
    finally:
        if saved is not None:
            os.environ["DATABASE_URL"] = saved


def _process_tree(pid: int) -> list[Any]:
    """The process and all its descendants (the worker and its pool), [] once it is gone."""
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


class MemorySampler(threading.Thread):
    """Peak summed RSS / PSS (MB) of a process and its children, sampled every 0.5 s."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_rss = 0.0
        self.peak_pss = 0.0
        self.peak_single_rss = 0.0
        self._stop_event = threading.Event()

    def run(self) -> None:
        import psutil

        while not self._stop_event.wait(0.5):
            procs = _process_tree(self.pid)
            if not procs:
                continue
            rss = pss = single = 0.0
            for p in procs:
                try:
                    info = p.memory_full_info()
                except psutil.Error:
                    continue
                rss += info.rss
                pss += getattr(info, "pss", info.rss)
                single = max(single, info.rss)
            self.peak_rss = max(self.peak_rss, rss / 2**20)
            self.peak_pss = max(self.peak_pss, pss / 2**20)
            self.peak_single_rss = max(self.peak_single_rss, single / 2**20)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(5)


class CpuMeter:
    """CPU seconds spent by the worker tree, the local PostgreSQL server and this process (the
    bench and the in-process sandbox) between ``start()`` and ``stop()``.

    Wall-clock throughput on this 2-core machine moved by a fifth between identical runs; CPU
    per track moves about half as much, and says where a track's cost goes. PostgreSQL is only
    counted when it runs on this machine (its processes are found by name).
    """

    GROUPS = ("worker", "postgres", "bench+sandbox")

    def __init__(self, *worker_pids: int) -> None:
        self.worker_pids = worker_pids
        self._start: dict[tuple[str, int], float] = {}
        self.seconds: dict[str, float] = dict.fromkeys(self.GROUPS, 0.0)

    def _sample(self) -> dict[tuple[str, int], float]:
        import psutil

        me = os.getpid()
        out: dict[tuple[str, int], float] = {}
        worker = {proc.pid for pid in self.worker_pids for proc in _process_tree(pid)}
        for proc in psutil.process_iter(["name"]):
            try:
                if proc.pid in worker:
                    group = "worker"
                elif proc.pid == me:
                    group = "bench+sandbox"
                elif (proc.info["name"] or "").startswith("postgres"):
                    group = "postgres"
                else:
                    continue
                times = proc.cpu_times()
            except psutil.Error:
                continue
            out[(group, proc.pid)] = times.user + times.system
        return out

    def start(self) -> None:
        self._start = self._sample()

    def stop(self) -> None:
        # A process that started during the window counts from zero, one that ended is lost
        # (PostgreSQL backends of this bench live for the whole run).
        for (group, pid), seconds in self._sample().items():
            self.seconds[group] += seconds - self._start.get((group, pid), 0.0)

    def per_item_ms(self, items: int) -> str:
        parts = [f"{g} {self.seconds[g] * 1000 / max(items, 1):.1f}" for g in self.GROUPS]
        total = sum(self.seconds.values()) * 1000 / max(items, 1)
        return f"{total:.1f} ms ({', '.join(parts)})"


@contextmanager
def worker_process(
    env: dict[str, str],
    concurrency: int,
    log: Path,
    queues: Sequence[str] | None = None,
) -> Iterator[int]:
    """``celery -A bench.pipeline worker`` on ``queues`` (default: every queue); yields its
    pid once that very worker answers a ping (another bench worker may already be up); always
    killed."""
    from pipeline.runtime import ALL_QUEUES

    node = f"bench-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"

    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "bench.pipeline",
                "worker",
                "-Q",
                ",".join(queues or ALL_QUEUES),
                "-c",
                str(concurrency),
                "-P",
                "prefork",
                "--without-gossip",
                "--without-mingle",
                "-n",
                node,
                "--loglevel",
                os.environ.get("SONGNODES_BENCH_WORKER_LOGLEVEL", "WARNING"),
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    # A bench stopped with SIGTERM (``kill``, ``timeout``) runs this ``finally`` too: a worker
    # left behind kept consuming the next bench's queues against a database that was gone.
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        deadline = time.monotonic() + 60
        while not app.control.ping(destination=[node], timeout=0.5):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start: {log.read_text()[-3000:]}")
        yield proc.pid
    finally:
        signal.signal(signal.SIGTERM, previous)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


# ------------------------------------------------------------------------------------ measures


def _drain_seconds(broker: Any, count: int) -> float:
    for _ in range(count):
        noop.apply_async(queue=NOOP_QUEUE, routing_key=NOOP_QUEUE)
    start = time.perf_counter()
    # limit=1: return on the worker's reply. Without it the broadcast waits out the whole
    # timeout collecting replies, and a drain shorter than 5 s was timed as 5 s.
    app.control.add_consumer(NOOP_QUEUE, reply=True, timeout=5, limit=1)
    while broker.llen(NOOP_QUEUE) or broker.hlen("unacked"):
        time.sleep(0.005)
    elapsed = time.perf_counter() - start
    app.control.cancel_consumer(NOOP_QUEUE, reply=True, timeout=5)
    return elapsed


NOOP_ROUNDS = 3


def noop_throughput(
    broker: Any, count: int, meter: CpuMeter, rounds: int = NOOP_ROUNDS
) -> list[float]:
    """no-op tasks/s of ``rounds`` drains of ``count`` tasks each, in the order measured.

    An untimed warm-up round first: the pool children's first tasks pay imports and connections.
    The baseline is their median: one drain on this 2-core machine read anywhere from ~520 to
    ~700 tasks/s, three in a row in one worker 527-595.
    """
    _drain_seconds(broker, min(count, 200))
    meter.start()
    drains = [count / _drain_seconds(broker, count) for _ in range(rounds)]
    meter.stop()
    return drains


@dataclass
class PassResult:
    name: str
    tracks: int
    seconds: float
    calls_per_track: float
    gold_rows: int
    p50_s: float
    p95_s: float
    not_found_share: float
    cpu: str

    @property
    def tracks_per_s(self) -> float:
        return self.tracks / self.seconds

    def line(self) -> str:
        return (
            f"{self.name:<22} {self.tracks:>6} tracks {self.seconds:7.1f} s "
            f"{self.tracks_per_s:7.1f} tracks/s  {self.calls_per_track:5.2f} calls/track  "
            f"gold {self.gold_rows:>6}  ingest->gold p50 {self.p50_s:6.2f} s "
            f"p95 {self.p95_s:6.2f} s  not_found lookups {self.not_found_share:.0%}"
            + f"\n{'':<22} CPU per track {self.cpu}"
        )


def _progress(conn: Any, tag: str) -> tuple[int, int, int]:
    """(runs created, runs still running, jobs not yet merged/failed) of this tag."""
    row = conn.execute(
        """SELECT count(*), count(*) FILTER (WHERE r.run_status = 'running'),
                  (SELECT count(*) FROM enrichment_jobs j
                     JOIN enrichment_pipeline_runs r2 ON r2.id = j.run_id
                    WHERE r2.triggered_by = %(t)s AND j.status NOT IN ('merged', 'failed'))
           FROM enrichment_pipeline_runs r WHERE r.triggered_by = %(t)s""",
        {"t": tag},
    ).fetchone()
    return int(row[0]), int(row[1]), int(row[2])


_GOLD_PENDING = """
SELECT count(*) FILTER (WHERE g.id IS NULL)
FROM enrichment_jobs j JOIN enrichment_pipeline_runs r ON r.id = j.run_id
JOIN silver_enriched_tracks s ON s.id = j.silver_track_id
LEFT JOIN gold_track_analytics g ON g.silver_track_id = s.id AND g.last_analyzed_at >= j.merged_at
WHERE r.triggered_by = %(t)s AND s.validation_status = ANY(%(ok)s)
  AND jsonb_array_length(coalesce(s.validation_errors, '[]'::jsonb)) = 0
"""

_STATS = """
WITH j AS (
  SELECT j.*, b.created_at AS ingested_at FROM enrichment_jobs j
  JOIN enrichment_pipeline_runs r ON r.id = j.run_id
  JOIN bronze_scraped_tracks b ON b.id = j.bronze_track_id
  WHERE r.triggered_by = %(t)s)
SELECT (SELECT count(*) FROM j),
       (SELECT coalesce(sum(l.api_calls), 0) FROM enrichment_lookups l JOIN j ON j.id = l.job_id),
       (SELECT count(*) FILTER (WHERE l.status = 'not_found')::float / greatest(count(*), 1)
          FROM enrichment_lookups l JOIN j ON j.id = l.job_id),
       (SELECT greatest(max(j.merged_at), max(g.last_analyzed_at))
          FROM j LEFT JOIN gold_track_analytics g ON g.silver_track_id = j.silver_track_id),
       (SELECT array_agg(extract(epoch FROM g.last_analyzed_at - j.ingested_at))
          FROM j JOIN gold_track_analytics g ON g.silver_track_id = j.silver_track_id)
"""


def run_pass(
    conn: Any,
    sandbox: Any,
    name: str,
    tracks: list[dict[str, Any]],
    mode: str,
    latency_ms: float,
    meter: CpuMeter,
) -> PassResult:
    """Send ``tracks`` through the real pipeline and wait for gold; return what was measured."""
    from pipeline.quality import GOLD_STATUSES
    from providers.sandbox import PROVIDERS
    from tasks.ingest import ingest_batch

    conn.execute("UPDATE metadata_enrichment_config SET waterfall_mode = %s", (mode,))
    conn.commit()
    for provider in PROVIDERS:
        sandbox.configure(provider, latency_ms=latency_ms)
    tag = f"bench:{name}:{uuid.uuid4().hex[:8]}"
    batches = [tracks[i : i + INGEST_BATCH] for i in range(0, len(tracks), INGEST_BATCH)]
    meter.start()
    wall0 = time.time()
    for batch in batches:
        ingest_batch.apply_async((batch, tag, "bench"))
    stall_s = 180.0  # fail only when nothing moves for this long (slow is a result, not an error)
    last_seen: tuple[int, int, int] | None = None
    deadline = time.monotonic() + stall_s
    while True:
        created, running, open_jobs = _progress(conn, tag)
        conn.commit()
        if (created, running, open_jobs) != last_seen:
            last_seen, deadline = (created, running, open_jobs), time.monotonic() + stall_s
        if created >= len(batches) and running == 0 and open_jobs == 0:
            pending = conn.execute(_GOLD_PENDING, {"t": tag, "ok": list(GOLD_STATUSES)}).fetchone()
            conn.commit()
            if pending and pending[0] == 0:
                break
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name}: no progress for {stall_s:.0f} s ({open_jobs} jobs open)")
        time.sleep(0.25)
    meter.stop()
    jobs, calls, not_found, last, lat = conn.execute(_STATS, {"t": tag}).fetchone()
    conn.commit()
    latencies = sorted(float(x) for x in (lat or []))
    seconds = (last.timestamp() if last else time.time()) - wall0
    result = PassResult(
        name=name,
        tracks=len(tracks),
        seconds=seconds,
        calls_per_track=float(calls) / max(int(jobs), 1),
        gold_rows=len(latencies),
        p50_s=_quantile(latencies, 0.50),
        p95_s=_quantile(latencies, 0.95),
        not_found_share=float(not_found),
        cpu=meter.per_item_ms(len(tracks)),
    )
    print(result.line(), flush=True)
    return result


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


GOLD_LOAD = """
INSERT INTO silver_enriched_tracks (artist_name, track_title, identity_key)
SELECT 'gold artist ' || g, 'gold title ' || g, 'goldbench|' || g FROM generate_series(1, {n}) g;
INSERT INTO gold_track_analytics (silver_track_id, artist_name, track_title, full_track_name, key,
                                  bpm, energy, genre_primary, data_quality_score,
                                  playlist_appearances)
SELECT s.id, s.artist_name, s.track_title, s.artist_name || ' - ' || s.track_title,
       (1 + floor(random() * 12)::int)::text || (CASE WHEN random() < 0.55 THEN 'A' ELSE 'B' END),
       round(CASE WHEN r < 0.55 THEN 120 + random() * 10
                  WHEN r < 0.75 THEN 138 + random() * 4
                  WHEN r < 0.92 THEN 170 + random() * 5
                  ELSE 85 + random() * 3 END::numeric, 2),
       round(random()::numeric, 2),
       (ARRAY['house', 'techno', 'drum and bass', 'trance'])[1 + (random() * 3)::int],
       0.7 + round((random() * 0.3)::numeric, 2), (random() * 50)::int
FROM (SELECT id, artist_name, track_title, random() AS r FROM silver_enriched_tracks
      WHERE identity_key LIKE 'goldbench|%') s;
ANALYZE silver_enriched_tracks;
ANALYZE gold_track_analytics;
"""

HARMONIC_QUERY = """
SELECT recommended_track_id, recommended_key, recommended_bpm, key_relation, tempo_relation,
       compatibility_score
FROM gold_harmonic_mixing_recommendations WHERE source_track_id = %s ORDER BY rank
"""


def gold_part(url: str, rows: int) -> tuple[float, float, float, int]:
    """(load s, refresh s, harmonic p95 ms, recommendation rows of the 100 sampled tracks) at
    ``rows`` gold tracks. The harmonic view is computed on read (007): counting all of it would
    compute every track's suggestions, so only the sampled tracks' rows are counted."""
    import random

    import psycopg

    from bench._common import Timer, libpq

    with psycopg.connect(libpq(url), autocommit=True) as conn:
        with Timer() as load:
            conn.execute(GOLD_LOAD.replace("{n}", str(int(rows))).encode())
        with Timer() as refresh:
            conn.execute("SELECT refresh_gold_materialized_views()")
        ids = [r[0] for r in conn.execute("SELECT id FROM gold_track_analytics")]
        rng = random.Random(7)
        timings = []
        rec_rows = 0
        for track_id in rng.sample(ids, min(100, len(ids))):
            start = time.perf_counter()
            rec_rows += len(conn.execute(HARMONIC_QUERY, (track_id,), prepare=True).fetchall())
            timings.append((time.perf_counter() - start) * 1000)
    return load.seconds, refresh.seconds, _quantile(sorted(timings), 0.95), rec_rows


# ---------------------------------------------------------------------------------------- main


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--short", action="store_true", help="CI: 200 + 2 x 50 tracks, 10k gold rows")
    p.add_argument("--tracks", type=int, help="tracks in the 0 ms pass (default 10000)")
    p.add_argument("--latency-tracks", type=int, help="tracks per 50 ms pass (default 2000)")
    p.add_argument("--gold-rows", type=int, help="gold tracks for the refresh (default 1000000)")
    p.add_argument("--noop-tasks", type=int, help="no-op tasks for the baseline (default 5000)")
    p.add_argument("--concurrency", type=int, default=4, help="worker prefork processes")
    p.add_argument("--broker-db", type=int, default=5, help="Redis db of the broker")
    p.add_argument("--state-db", type=int, default=6, help="Redis db of limits/breakers")
    p.add_argument("--redis", default="redis://127.0.0.1:6379", help="Redis server URL")
    args = p.parse_args(argv)
    short = args.short
    args.tracks = args.tracks or (200 if short else 10_000)
    args.latency_tracks = args.latency_tracks or (50 if short else 2_000)
    args.gold_rows = args.gold_rows or (10_000 if short else 1_000_000)
    args.noop_tasks = args.noop_tasks or (1_000 if short else 5_000)
    return args


def main(argv: list[str] | None = None) -> None:
    import psycopg
    import redis

    from bench._common import emit, libpq
    from providers.registry import available_providers
    from providers.sandbox import start_in_thread

    args = _args(argv)
    broker_url = f"{args.redis}/{args.broker_db}"
    state_url = f"{args.redis}/{args.state_db}"
    broker = redis.Redis.from_url(broker_url)
    state = redis.Redis.from_url(state_url)
    for client in (broker, state):
        client.flushdb()
    app.conf.broker_url = broker_url
    app.conf.result_backend = None
    log = Path(tempfile.mkdtemp(prefix="sn-bench-")) / "worker.log"
    sandbox = start_in_thread()
    nonce = uuid.uuid4().hex[:8]
    t_total = time.perf_counter()
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
            for name in available_providers():
                env[f"SONGNODES_{name.upper()}_RATE_LIMIT_PER_SECOND"] = "10000"
            print(
                f"worker: prefork -c {args.concurrency}, broker {broker_url}, state {state_url}; "
                f"database {url.rsplit('/', 1)[-1]}; sandbox {sandbox.base_url}; log {log}",
                flush=True,
            )
            with (
                worker_process(env, args.concurrency, log) as pid,
                psycopg.connect(libpq(url)) as conn,
            ):
                sampler = MemorySampler(pid)
                sampler.start()
                try:
                    noop_cpu = CpuMeter(pid)
                    drains = noop_throughput(broker, args.noop_tasks, noop_cpu)
                    noop_tps = statistics.median(drains)
                    print(
                        f"no-op: {noop_tps:.1f} tasks/s, median of {len(drains)} drains of "
                        f"{args.noop_tasks} tasks ({', '.join(f'{d:.1f}' for d in drains)}); "
                        f"CPU per task "
                        f"{noop_cpu.per_item_ms(args.noop_tasks * len(drains))}",
                        flush=True,
                    )
                    n, m = args.tracks, args.latency_tracks
                    plan = [
                        ("sequential 0ms", n, 0, "sequential", 0.0),
                        ("sequential 50ms", m, n, "sequential", 50.0),
                        ("parallel 50ms", m, n + m, "parallel", 50.0),
                    ]
                    passes = [
                        run_pass(
                            conn, sandbox, name, envelopes(k, off, nonce), mode, ms, CpuMeter(pid)
                        )
                        for name, k, off, mode, ms in plan
                    ]
                finally:
                    sampler.stop()
            seq, par = passes[1], passes[2]
            print(
                f"provider calls per track: sequential {seq.calls_per_track:.2f}, "
                f"parallel {par.calls_per_track:.2f} (same 50 ms latency; ingest->gold p95 "
                f"{seq.p95_s:.2f} s vs {par.p95_s:.2f} s)"
            )
            print(
                f"peak worker memory (parent + {args.concurrency} children): "
                f"RSS sum {sampler.peak_rss:.0f} MB, PSS sum {sampler.peak_pss:.0f} MB, "
                f"largest process {sampler.peak_single_rss:.0f} MB (target < 300 MB)"
            )
            load_s, refresh_s, p95_ms, recs = gold_part(url, args.gold_rows)
            print(
                f"gold at {args.gold_rows:,} synthetic tracks (loaded in {load_s:.1f} s): "
                f"refresh_gold_materialized_views() {refresh_s:.1f} s (target < 60 s), "
                f"{recs:,} recommendation rows; harmonic suggestions p95 {p95_ms:.2f} ms "
                f"over 100 tracks (target < 20 ms)"
            )
    finally:
        sandbox.stop()
        for client in (broker, state):
            client.flushdb()
    tps = passes[0].tracks_per_s
    print(
        f"end to end: {tps:.1f} tracks/s vs no-op {noop_tps:.1f} tasks/s = "
        f"{tps / noop_tps:.3f} (target >= 0.25); whole bench {time.perf_counter() - t_total:.0f} s"
    )
    emit("pipeline", tps, "tracks/s", noop_tps, tps / noop_tps)


if __name__ == "__main__":
    main()
