"""One chaos run: real workers and beat on a PRIVATE broker and PostgreSQL, faults, then heal.

Used by the chaos tier (``tests/integration/test_chaos_restarts.py``, short form) and, for the
measurements in docs/operations.md, as a script::

    .venv/bin/python -m tests.integration.chaos_harness --runs 10 --broker redis
    .venv/bin/python -m tests.integration.chaos_harness --runs 10 --broker rabbitmq

A run ingests tracks and setlists (each batch sent twice), waits until bronze holds them and
the first lookups are recorded, then, in order: SIGKILLs the worker and starts a new one,
SIGKILLs the broker and starts it EMPTY (every queued message lost), and crash-restarts
PostgreSQL (``pg_ctl -m immediate``) while merges run. It then waits until every record is
merged once, every setlist is in silver, every run is closed, and reports what it saw.
Only private instances are ever killed, never the machine's shared services.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError

from tests.integration.conftest import (
    ROOT,
    PrivatePostgres,
    PrivateRedis,
    WorkerProcess,
    catalogue_rows,
    free_port,
)

__all__ = ["ChaosResult", "PrivateRabbit", "chaos_run", "private_stack", "use_broker"]


class PrivateRabbit:
    """A RabbitMQ node of our own (own node name, ports, data dir, no plugins), SIGKILLable."""

    def __init__(self, workdir: Path) -> None:
        import pwd
        import shutil

        self.port = free_port()
        # Its own directory under /tmp: run as root, rabbitmq-server drops to the rabbitmq user,
        # which must own it (a pytest tmp_path under root's 0700 directories would not do).
        self.dir = Path(tempfile.mkdtemp(prefix="sn-chaos-rabbit-"))
        del workdir
        self.name = f"sn-chaos-{uuid.uuid4().hex[:6]}@localhost"
        (self.dir / "enabled_plugins").write_text("[].\n")
        if os.geteuid() == 0:
            with contextlib.suppress(KeyError):
                pwd.getpwnam("rabbitmq")
                for path in (self.dir, self.dir / "enabled_plugins"):
                    shutil.chown(path, "rabbitmq", "rabbitmq")
        self.proc: subprocess.Popen[bytes] | None = None
        self.node_pids: set[int] = set()  # the node's beam.smp (see kill)

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def start(self, wipe: bool = False) -> None:
        import shutil

        if wipe:
            shutil.rmtree(self.dir / "mnesia", ignore_errors=True)
        env = dict(os.environ) | {
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "none"),
        }
        before = _beam_pids()
        self.proc = subprocess.Popen(
            ["rabbitmq-server"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        import socket

        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(
                ("127.0.0.1", self.port), timeout=1
            ):
                time.sleep(1.0)  # the listener opens just before the node is fully booted
                self.node_pids = _beam_pids() - before
                return
            time.sleep(0.5)
        raise RuntimeError("private RabbitMQ did not start within 60 s")

    def kill(self) -> None:
        import signal

        if self.proc is None:
            return
        # The node itself: rabbitmq-server starts it through ``su``, in a session of its own,
        # so killing the wrapper's process group missed it. Until 2026-12-07 the "broker
        # SIGKILL" of RabbitMQ chaos runs left the node running (no worker ever lost its
        # connection) and every finished run left a node behind.
        for pid in self.node_pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        deadline = time.monotonic() + 10
        while self.node_pids & _beam_pids() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.node_pids = set()

    def stop(self) -> None:
        import shutil

        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def _beam_pids() -> set[int]:
    """Pids of the Erlang VMs running now (RabbitMQ nodes)."""
    found = subprocess.run(["pgrep", "-f", "beam.smp"], capture_output=True, text=True)
    return {int(p) for p in found.stdout.split()}


def use_broker(app: Any, url: str, options: dict[str, Any]) -> None:
    """Point this process's Celery app at another broker (pools are rebuilt lazily)."""
    # kombu.pools.reset closes every pool and empties kombu's registry of them (a pool only
    # closed would be handed back, closed, to the next user of the same URL).
    from kombu import pools

    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None
    import celeryconfig

    app.conf.broker_url = url
    app.conf.broker_transport = celeryconfig.transport_for(url)
    app.conf.broker_transport_options = options
    # Queues, exchange and queue type follow the broker (quorum queues on RabbitMQ), as a
    # process started with that CELERY_BROKER_URL would have them.
    amqp = celeryconfig.is_amqp(url)
    app.conf.task_queues = celeryconfig.queues_for(url)
    app.conf.task_default_exchange = "songnodes.topic" if amqp else "songnodes"
    app.conf.task_default_exchange_type = "topic" if amqp else "direct"
    app.conf.task_default_queue_type = "quorum" if amqp else "classic"
    for cached in ("queues", "default_queue", "router", "default_exchange"):
        app.amqp.__dict__.pop(cached, None)


@dataclass
class ChaosResult:
    broker: str
    tracks: int
    lost: int
    duplicated: int
    runs_open: int
    heal_s: float
    provider_calls_twice: int
    workers_died: int
    failed_work: int
    provider_requests: int = 0
    recorded_calls: int = 0
    # The same question (GET path + query) answered 200/404 more than once by the sandbox: a
    # provider asked twice, whatever errors and retries came in between (``provider_calls_twice``
    # counts every request not recorded, so with injected errors it counts retried failures).
    answered_twice: int = 0
    # Seconds from the first message sent to healed: with --faults none, how long the work
    # itself takes in the same setup (what "heal" includes when the faults come early).
    total_s: float = 0.0


@contextlib.contextmanager
def private_stack(workdir: Path, broker: str = "redis", aof: bool = False) -> Iterator[Any]:
    """A private broker (Redis or RabbitMQ) + Redis state store + migrated PostgreSQL."""
    from db.migrate import upgrade

    pg = PrivatePostgres()
    pg.start()
    state = PrivateRedis(workdir / "redis", aof=aof)
    state.start()
    rabbit = None
    try:
        url = pg.url.rsplit("/", 1)[0] + "/songnodes"
        admin = create_engine(pg.url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("CREATE DATABASE songnodes"))
        admin.dispose()
        upgrade(url)
        if broker == "rabbitmq":
            rabbit = PrivateRabbit(workdir / "rabbit")
            rabbit.start()
        yield _Stack(pg, state, rabbit, url)
    finally:
        if rabbit is not None:
            rabbit.stop()
        state.stop()
        pg.stop()


@dataclass
class _Stack:
    pg: PrivatePostgres
    redis: PrivateRedis
    rabbit: PrivateRabbit | None
    db_url: str

    @property
    def broker_url(self) -> str:
        return self.rabbit.url if self.rabbit else f"{self.redis.url}/0"

    def kill_broker_and_start_empty(self) -> None:
        if self.rabbit:
            self.rabbit.kill()
            self.rabbit.start(wipe=True)
        else:
            self.redis.kill()
            self.redis.start(wipe=True)

    def env(self, base: dict[str, str]) -> dict[str, str]:
        env = base | {
            "DATABASE_URL": self.db_url,
            "CELERY_BROKER_URL": self.broker_url,
            "REDIS_URL": f"{self.redis.url}/1",
            "SONGNODES_BROKER_KEYPREFIX": "",
            "SONGNODES_VISIBILITY_TIMEOUT": "8",
            "SONGNODES_DB_RETRY_S": "120",
        }
        return env


def _envelopes(tag: str, tracks: int, setlists: int, offset: int) -> list[list[dict[str, Any]]]:
    rows = catalogue_rows(tracks + setlists * 5, offset=offset)
    singles = [
        {
            "kind": "track",
            "source": "it-chaos",
            "source_url": f"https://example.test/{tag}/{i}",
            "scraper_version": "it-1",
            "artist_name": r["artist"],
            "track_title": r["title"],
            "raw_json": {"i": i},
        }
        for i, r in enumerate(rows[:tracks])
    ]
    sets = [
        {
            "kind": "playlist",
            "source": "it-chaos",
            "source_url": f"https://example.test/{tag}/set/{k}",
            "scraper_version": "it-1",
            "playlist_name": f"Chaos set {tag} {k}",
            "artist_name": "Chaos DJ",
            "raw_json": {
                "tracks": [
                    {"position": p, "artist": r["artist"], "title": r["title"]}
                    for p, r in enumerate(rows[tracks + 5 * k : tracks + 5 * k + 5], start=1)
                ]
            },
        }
        for k in range(setlists)
    ]
    batches = [singles[i : i + 20] for i in range(0, len(singles), 20)] + [[s] for s in sets]
    return batches + batches  # every batch sent twice: bronze idempotency makes it free


def _q(engine: Engine, sql: str, **params: Any) -> Any:
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql), params).one()
    except DBAPIError:
        return None  # PostgreSQL is restarting


STATE_SQL = """
    SELECT (SELECT count(*) FROM bronze_scraped_tracks WHERE source = 'it-chaos'
              AND source_url LIKE :like) AS bronze,
           (SELECT count(DISTINCT j.bronze_track_id) FROM enrichment_jobs j
              JOIN bronze_scraped_tracks b ON b.id = j.bronze_track_id
              WHERE b.source_url LIKE :like AND j.status = 'merged') AS merged,
           (SELECT count(*) FROM enrichment_pipeline_runs
              WHERE run_status = 'running') AS runs_open,
           (SELECT count(*) FROM bronze_scraped_playlists p WHERE p.source_url LIKE :like
              AND NOT EXISTS (SELECT 1 FROM silver_enriched_playlists s
                              WHERE s.bronze_id = p.id)) AS sets_missing,
           (SELECT count(*) FROM enrichment_lookups WHERE status <> 'pending') AS answered,
           (SELECT count(*) FROM enrichment_jobs WHERE status = 'merged') AS merged_jobs
"""

DUPLICATES_SQL = """
    SELECT (SELECT count(*) FROM (SELECT t.run_id, t.bronze_id, t.provider_used, t.metadata_field
              FROM enrichment_transformations t WHERE t.transformation_type = 'enrichment'
              GROUP BY 1, 2, 3, 4 HAVING count(*) > 1) d)
         + (SELECT count(*) FROM (SELECT t.run_id, t.bronze_id, t.metadata_field
              FROM enrichment_transformations t WHERE t.transformation_type = 'merge'
              GROUP BY 1, 2, 3 HAVING count(*) > 1) m)
         + (SELECT count(*) - count(DISTINCT identity_key) FROM silver_enriched_tracks)
         + (SELECT count(*) FROM (SELECT bronze_id FROM silver_enriched_playlists
              GROUP BY 1 HAVING count(*) > 1) p) AS duplicated,
           (SELECT coalesce(sum(api_calls), 0) FROM enrichment_lookups) AS recorded_calls,
           (SELECT count(*) FROM failed_work) AS failed_work
"""


def chaos_run(
    stack: _Stack,
    base_env: dict[str, str],
    sandbox: Any,
    workdir: Path,
    *,
    tracks: int = 40,
    setlists: int = 2,
    offset: int = 0,
    faults: tuple[str, ...] = ("worker", "broker", "postgres"),
    timeout: float = 240,
    latency_ms: float = 150,
    workers_n: int = 1,
    error_rate: float = 0.0,
    down: tuple[str, ...] = (),
) -> ChaosResult:
    """Ingest, inject ``faults`` in order, wait for the pipeline to heal; see the module doc."""
    from tasks.app import app
    from tasks.ingest import ingest_batch

    broker_name = "rabbitmq" if stack.rabbit else "redis"
    env = stack.env(base_env)
    use_broker(
        app,
        stack.broker_url,
        {"visibility_timeout": 8} if not stack.rabbit else {"confirm_publish": True},
    )
    engine = create_engine(stack.db_url, pool_pre_ping=True)
    tag = uuid.uuid4().hex[:8]
    like = f"https://example.test/{tag}/%"
    before = _requests(sandbox)
    from providers.registry import available_providers

    for name in available_providers():  # work in flight when the faults come
        errors = {"500": error_rate} if error_rate else {}
        sandbox.configure(name, latency_ms=latency_ms, errors=errors, down=name in down)
    sandbox.state.stats.forget_answers()
    workers: list[WorkerProcess] = []
    beat = _start_beat(env, workdir)
    died = 0

    def new_worker() -> WorkerProcess:
        w = WorkerProcess(env, workdir / f"worker-{len(workers)}.log")
        w.start()
        workers.append(w)
        return w

    def state() -> Any:
        return _q(engine, STATE_SQL, like=like)

    def wait(check: Any, what: str, limit: float) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            s = state()
            if s is not None and check(s):
                return
            time.sleep(0.5)
        raise AssertionError(
            f"chaos run {tag}: timed out waiting for {what}: {state()}; open work: "
            f"{_open_work(engine)}"
        )

    try:
        current = new_worker()
        others = [new_worker() for _ in range(workers_n - 1)]  # not killed; they heal too
        expected = tracks + 5 * setlists
        started = time.monotonic()
        for batch in _envelopes(tag, tracks, setlists, offset):
            ingest_batch.apply_async((batch, f"chaos:{tag}", "task"))
        wait(lambda s: s.bronze == expected, "bronze to hold every record", 120)
        wait(lambda s: s.answered > 0, "the first recorded lookup", 60)
        last_fault = time.monotonic()
        fault_times: dict[str, float] = {}  # fault -> when it came (epoch seconds)
        for fault in faults:
            fault_times[fault] = time.time()
            if fault == "worker":
                current.kill()
                current = new_worker()
            elif fault == "broker":
                stack.kill_broker_and_start_empty()
            elif fault == "postgres":
                stack.pg.restart_immediate()
            elif fault == "provider_up":  # the provider that was down answers again
                for name in down:
                    sandbox.configure(name, down=False)
            last_fault = time.monotonic()
            time.sleep(1.0)
        progress = (workdir / "progress.csv").open("w")  # seconds after the last fault, merged
        progress.write("after_last_fault_s,merged,answered\n")

        def healed(s: Any) -> bool:
            progress.write(f"{time.monotonic() - last_fault:.1f},{s.merged},{s.answered}\n")
            return bool(s.merged == expected and s.runs_open == 0 and s.sets_missing == 0)

        with progress:
            wait(healed, "every record merged, every setlist in silver, every run closed", timeout)
        heal = time.monotonic() - last_fault
        alive = [current, *others]
        died = sum(
            1 for w in workers if w not in alive and w.proc and w.proc.returncode not in (None, -9)
        )
        died += sum(1 for w in alive if w.proc and w.proc.poll() is not None)
        final = state()
        # What was asked twice, for the run's logs (--keep): request -> when it was answered,
        # in seconds after each fault (which fault it followed tells why it was asked again).
        asked_again = {
            p: {k: [{f: round(t - at, 2) for f, at in fault_times.items()} for t in times]
                for k, times in keys.items()}
            for p, keys in sandbox.state.stats.repeated().items()
        }  # fmt: skip
        (workdir / "asked-twice.json").write_text(
            json.dumps(asked_again, indent=1, sort_keys=True)
        )
        dup = _q(engine, DUPLICATES_SQL)
        asked = _requests(sandbox) - before
        return ChaosResult(
            broker=broker_name,
            tracks=expected,
            lost=expected - int(final.merged),
            duplicated=int(dup.duplicated),
            runs_open=int(final.runs_open),
            heal_s=round(heal, 1),
            provider_calls_twice=max(0, asked - int(dup.recorded_calls)),
            workers_died=died,
            failed_work=int(dup.failed_work),
            provider_requests=asked,
            recorded_calls=int(dup.recorded_calls),
            answered_twice=sum(
                int(v.get("answered_again", 0)) for v in sandbox.stats().values()
            ),
            total_s=round(time.monotonic() - started, 1),
        )
    finally:
        for name in available_providers():
            sandbox.configure(name, latency_ms=0, errors={}, down=False)
        for w in workers:
            w.stop()
        beat.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            beat.wait(10)
        engine.dispose()


def _requests(sandbox: Any) -> int:
    """Requests the sandbox answered so far, all providers."""
    return sum(int(v.get("requests", 0)) for v in sandbox.stats().values())


def _open_work(engine: Engine) -> list[Any]:
    try:
        with engine.connect() as conn:
            return [
                tuple(r)
                for r in conn.execute(
                    text("""
                    SELECT j.status, j.updated_at, l.provider, l.status, l.leased_until,
                           l.updated_at, now()
                    FROM enrichment_jobs j LEFT JOIN enrichment_lookups l ON l.job_id = j.id
                    WHERE j.status IN ('enriching', 'merging') LIMIT 10""")
                )
            ]
    except DBAPIError:
        return []


def _start_beat(env: dict[str, str], workdir: Path) -> subprocess.Popen[bytes]:
    with (workdir / "beat.log").open("ab") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tasks", "beat", "--loglevel", "WARNING",
             "--schedule", str(workdir / "beat-schedule")],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--broker", choices=["redis", "rabbitmq"], default="redis")
    parser.add_argument("--tracks", type=int, default=60)
    parser.add_argument("--setlists", type=int, default=4)
    parser.add_argument("--keep", action="store_true", help="keep logs (printed directory)")
    parser.add_argument("--timeout", type=float, default=240)
    parser.add_argument("--workers", type=int, default=1, help="worker processes (one killed)")
    parser.add_argument(
        "--error-rate", type=float, default=0.0, help="share of requests answered 500"
    )
    parser.add_argument(
        "--down", action="append", default=[], help="a provider down until the faults are over"
    )
    parser.add_argument(
        "--faults", default="worker,broker,postgres",
        help="faults in order (worker, broker, postgres; 'none': a control run of the same work)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    from providers.registry import available_providers
    from providers.sandbox import start_in_thread

    chosen = tuple(f for f in args.faults.split(",") if f and f != "none")
    unknown = set(chosen) - {"worker", "broker", "postgres"}
    if unknown:
        parser.error(f"unknown faults: {sorted(unknown)}")

    sandbox = start_in_thread()
    results = []
    try:
        base = dict(os.environ) | sandbox.env | {"SONGNODES_LOG_FORMAT": "json"}
        for name in available_providers():
            base[f"SONGNODES_{name.upper()}_RATE_LIMIT_PER_SECOND"] = "1000"
        for i in range(args.runs):
            with contextlib.ExitStack() as cleanup:
                if args.keep:
                    workdir = Path(tempfile.mkdtemp(prefix="sn-chaos-"))
                    print(f"logs in {workdir}", file=sys.stderr)
                else:
                    workdir = Path(cleanup.enter_context(tempfile.TemporaryDirectory()))
                with private_stack(workdir, args.broker) as stack:
                    faults = chosen + (("provider_up",) if args.down else ())
                    result = chaos_run(
                        stack, base, sandbox, workdir, tracks=args.tracks,
                        setlists=args.setlists, offset=(i * 97) % 300, timeout=args.timeout,
                        faults=faults, workers_n=args.workers, error_rate=args.error_rate,
                        down=tuple(args.down),
                    )
            results.append(result)
            print(json.dumps(asdict(result)), flush=True)
    finally:
        sandbox.stop()
    print(json.dumps({"chaos": args.broker, "runs": len(results),
                      "lost": sum(r.lost for r in results),
                      "duplicated": sum(r.duplicated for r in results),
                      "runs_open": sum(r.runs_open for r in results),
                      "max_heal_s": max((r.heal_s for r in results), default=None),
                      "provider_calls_twice": sum(r.provider_calls_twice for r in results),
                      "answered_twice": sum(r.answered_twice for r in results),
                      "provider_requests": sum(r.provider_requests for r in results),
                      "workers_died": sum(r.workers_died for r in results)}))


if __name__ == "__main__":
    main()
