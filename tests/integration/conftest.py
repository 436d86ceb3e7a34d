"""Integration harness: a real ``celery -A tasks worker`` process, real Redis, real PostgreSQL.

The worker runs as a subprocess (prefork pool) on a Redis broker database of its own, against the
run's migrated test database, with every provider pointed at an in-process sandbox. Tests enqueue
with the real ``apply_async`` and read results from PostgreSQL: nothing is mocked.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib
from sqlalchemy import Engine, text

ROOT = Path(__file__).resolve().parents[2]
# Each test session gets its own broker key prefix and its own Redis database for limiter and
# breaker state, so parallel sessions on one Redis never consume each other's messages.
SESSION_PREFIX = f"sn-it-{uuid.uuid4().hex[:8]}:"
BROKER_DB = 11
STATE_DB = 1 + uuid.uuid4().int % 10


class WorkerProcess:
    """A real Celery worker subprocess that can be killed and restarted."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        from pipeline.runtime import ALL_QUEUES
        from tasks.app import app

        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "tasks",
            "worker",
            "-Q",
            ",".join(ALL_QUEUES),
            "-c",
            "2",
            "-P",
            "prefork",
            "--without-gossip",
            "--without-mingle",
            "-n",
            f"it-{uuid.uuid4().hex[:6]}@%h",
            "--loglevel",
            os.environ.get("SONGNODES_IT_WORKER_LOGLEVEL", "WARNING"),  # INFO: every task
        ]
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                command,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited: {self.log_path.read_text()[-3000:]}")
            if app.control.ping(timeout=0.5):
                return
        raise RuntimeError("worker did not answer ping within 60 s")

    def kill(self) -> None:
        """SIGKILL the whole worker process group (parent and pool children), like an OOM kill."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture(scope="session")
def db_url(postgres_available: None) -> Iterator[str]:
    """A database of their own: a real worker commits what these tests enqueue, so sharing the
    rolled-back tests' database made row counts there depend on which tests ran first."""
    from tests.conftest import migrated_database

    with migrated_database("sn_integ") as url:
        yield url


@pytest.fixture(scope="session")
def engine(db_url: str) -> Iterator[Engine]:
    from tests.conftest import engine_on

    with engine_on(db_url) as eng:
        yield eng


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Any]:
    """The provider sandbox (simulated values) in a thread of the test process."""
    from providers.sandbox import start_in_thread

    handle = start_in_thread()
    try:
        yield handle
    finally:
        handle.stop()


def _reset_connection_pools(app: Any) -> None:
    """Close and forget every broker connection and producer pool of this process (Celery
    builds them lazily from ``broker_url`` and its options on first use). ``kombu.pools.reset``
    also empties kombu's process-wide registry of pools: closing a pool and leaving it there
    hands it, closed, to the next user of the same URL ("Acquire on closed pool")."""
    from kombu import pools

    pools.reset()
    app._pool = None
    amqp = app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None


@pytest.fixture(scope="session")
def pipeline_env(db_url: str, redis_url: str, sandbox: Any) -> Iterator[dict[str, str]]:
    """Environment shared by the worker subprocess and the enqueuing test process."""
    from providers.registry import available_providers
    from tasks.app import app

    base = redis_url.rsplit("/", 1)[0]
    broker, state = f"{base}/{BROKER_DB}", f"{base}/{STATE_DB}"
    redis_lib.Redis.from_url(state).flushdb()  # limiter/breaker state of this session only
    env = (
        dict(os.environ)
        | sandbox.env
        | {
            "DATABASE_URL": db_url,
            "CELERY_BROKER_URL": broker,
            "SONGNODES_BROKER_KEYPREFIX": SESSION_PREFIX,
            "REDIS_URL": state,
            "SONGNODES_VISIBILITY_TIMEOUT": "8",
            "SONGNODES_REFRESH_DEBOUNCE_S": "1",
            "SONGNODES_LOG_FORMAT": "json",
        }
    )
    env.pop("CELERY_RESULT_BACKEND", None)
    for name in available_providers():
        env[f"SONGNODES_{name.upper()}_RATE_LIMIT_PER_SECOND"] = "1000"
    old_broker = app.conf.broker_url
    # A test that ran earlier in this process (an eager task, a publish) may have opened the
    # app's connection and producer pools on the default broker; they do not follow a changed
    # broker_url, so ping and apply_async would go elsewhere. Start them afresh, here and after.
    _reset_connection_pools(app)
    app.conf.broker_url = broker
    old_options = app.conf.broker_transport_options
    app.conf.broker_transport_options = {
        "visibility_timeout": 8,
        "global_keyprefix": SESSION_PREFIX,
    }
    saved = {k: os.environ.get(k) for k in ("REDIS_URL", "DATABASE_URL")}
    os.environ["REDIS_URL"] = state
    os.environ["DATABASE_URL"] = db_url
    try:
        yield env
    finally:
        _reset_connection_pools(app)
        app.conf.broker_url = old_broker
        app.conf.broker_transport_options = old_options
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="session")
def worker(
    pipeline_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """One real worker for the integration session."""
    proc = WorkerProcess(pipeline_env, tmp_path_factory.mktemp("worker") / "worker.log")
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def wait_for(check: Callable[[], bool], timeout: float = 120, what: str = "condition") -> None:
    """Poll until ``check()``; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def run_and_wait(engine: Engine, messages: list[Any], tag: str, timeout: float = 180) -> None:
    """Enqueue one ingest batch under ``tag`` and wait until its run has finished."""
    from tasks.ingest import ingest_batch

    ingest_batch.apply_async((messages, tag, "task"))
    wait_for(lambda: _run_done(engine, tag), timeout, f"run {tag} to finish")


def _run_done(engine: Engine, tag: str) -> bool:
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT count(*) AS runs, count(*) FILTER (WHERE run_status = 'running') AS open "
                "FROM enrichment_pipeline_runs WHERE triggered_by = :t"
            ),
            {"t": tag},
        ).one()
    return bool(row.runs) and row.open == 0


def catalogue_rows(count: int, offset: int, clean: bool = True) -> list[dict[str, str]]:
    """Rows of the sandbox catalogue; ``clean`` = no per-provider override at all."""
    import csv

    from pipeline.matching import identity_key

    path = ROOT / "providers" / "sandbox" / "data" / "catalogue.csv"
    with path.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(line for line in fh if not line.startswith("#")))
    seen: set[str] = set()
    picked = []
    for row in rows:
        if clean and any(v for k, v in row.items() if "." in k):
            continue
        key = identity_key(row["artist"], row["title"])
        if key in seen:
            continue
        seen.add(key)
        picked.append(row)
    return picked[offset : offset + count]


def restore_provider(engine: Engine, sandbox: Any, provider: str) -> None:
    """Undo a provider outage: sandbox answering, breaker closed, registry healthy again.

    The breaker lives in this session's Redis state database (``REDIS_URL`` of the test process
    points at it), so later tests see a healthy provider and plan it again.
    """
    from providers.breaker import CircuitBreaker, default_store

    sandbox.configure(provider, down=False)
    CircuitBreaker(provider, store=default_store(os.environ["REDIS_URL"])).reset()
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE enrichment_providers SET health_status = 'healthy' WHERE provider_name = :p"
            ),
            {"p": provider},
        )


# --- private services for the chaos tier (issue 20) ---------------------------------------------
# The chaos tests kill and restart a broker and a database. Never the shared services: each test
# session starts its own redis-server and PostgreSQL cluster on free ports, in temp dirs.


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateRedis:
    """A redis-server of our own that can be SIGKILLed and started again (empty, or from its
    append-only file when ``aof``: ``appendfsync always``, as in docker-compose.yml)."""

    def __init__(self, workdir: Path, aof: bool = False) -> None:
        self.port = free_port()
        self.dir = workdir
        self.aof = aof
        self.proc: subprocess.Popen[bytes] | None = None
        self.dir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self, wipe: bool = False) -> None:
        import shutil

        if wipe:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir.mkdir(parents=True)
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "always"]
            if self.aof
            else ["--appendonly", "no"]
        )
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--dir", str(self.dir), *persistence],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        client = redis_lib.Redis(port=self.port)
        wait_for(lambda: self._ping(client), 20, "private redis to answer")

    @staticmethod
    def _ping(client: redis_lib.Redis) -> bool:
        try:
            return bool(client.ping())
        except redis_lib.RedisError:
            return False

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        self.kill()


class PrivatePostgres:
    """A PostgreSQL cluster of our own (``initdb``/``pg_ctl`` as the postgres user in a temp
    dir) that can be restarted with ``-m immediate`` (a crash: no checkpoint, connections cut)."""

    def __init__(self) -> None:
        import glob
        import shutil
        import tempfile

        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
        if not bins:
            pytest.skip("PostgreSQL server binaries not found")
        self.bin = Path(bins[-1])
        self.port = free_port()
        # Its own directory directly under /tmp: the postgres user must reach it (a pytest
        # tmp_path below root's 0700 directories would not do when the tests run as root).
        self.dir = Path(tempfile.mkdtemp(prefix="sn-chaos-pg-"))
        self._as_pg = [] if os.geteuid() != 0 else ["runuser", "-u", "postgres", "--"]
        if self._as_pg:
            shutil.chown(self.dir, "postgres", "postgres")
            os.chmod(self.dir, 0o700)
        self.data = self.dir / "data"
        subprocess.run(
            [*self._as_pg, str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
             "--auth=trust", "-E", "UTF8", "--no-sync"],
            check=True,
            stdout=subprocess.DEVNULL,
        )

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            [*self._as_pg, str(self.bin / "pg_ctl"), "-D", str(self.data), *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off "
            "-c max_connections=100 -c shared_buffers=32MB"
        )
        self._ctl("-o", options, "-l", str(self.dir / "server.log"), "-w", "start")

    def restart_immediate(self) -> None:
        """Crash-stop (``-m immediate``: like a power cut, recovery at start) and start again."""
        self._ctl("-m", "immediate", "-w", "stop")
        self.start()

    def stop(self) -> None:
        import shutil

        with contextlib.suppress(subprocess.CalledProcessError):
            self._ctl("-m", "immediate", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)
