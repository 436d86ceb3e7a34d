"""Integration harness: a real ``celery -A tasks worker`` process, real Redis, real PostgreSQL.

The worker runs as a subprocess (prefork pool) on a Redis broker database of its own, against the
run's migrated test database, with every provider pointed at an in-process sandbox. Tests enqueue
with the real ``apply_async`` and read results from PostgreSQL: nothing is mocked.
"""

from __future__ import annotations

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
            "WARNING",
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
