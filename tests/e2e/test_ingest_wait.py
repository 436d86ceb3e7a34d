"""Issue 15: ``songnodes ingest --wait`` stops at once, exit 1, when one of its batches was
quarantined whole (it sat until its timeout). The CLI runs as a user runs it (a subprocess) on a
real Redis broker with no worker, so its own batches stay queued; the test then makes one batch
of the CLI's run tag fail the way a worker would record it (the ``ingest_batch`` task body with
a value that is not a batch)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_lib
from sqlalchemy import text

from tests.e2e.test_cli import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def e2e_url(postgres_available: None) -> Iterator[str]:
    from tests.conftest import migrated_database

    with migrated_database("sn_e2e_wait") as url:
        yield url


def test_wait_exits_1_as_soon_as_a_batch_is_quarantined_whole(
    e2e_url: str, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from db.engine import dispose_engine
    from tasks.ingest import ingest_batch

    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"kind": "track"}\n')
    prefix = f"sn-e2e-wait-{uuid.uuid4().hex[:8]}:"
    broker = f"{redis_url.rsplit('/', 1)[0]}/12"
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CELERY_RESULT_BACKEND")}
    env |= {
        "DATABASE_URL": e2e_url,
        "CELERY_BROKER_URL": broker,
        "SONGNODES_BROKER_KEYPREFIX": prefix,
        "COLUMNS": "200",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "ingest", str(path), "--wait", "--timeout", "600"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        seen = []
        found = None
        while found is None and len(seen) < 20:  # "1 lines from ... (runs tagged cli:...)"
            seen.append(proc.stdout.readline())
            found = re.search(r"runs tagged (cli:[0-9a-f]+)", seen[-1])
        assert found, seen
        monkeypatch.setenv("DATABASE_URL", e2e_url)
        dispose_engine()
        ingest_batch.run(None, triggered_by=found.group(1), via="cli")
        dispose_engine()
        started = time.monotonic()
        out, _ = proc.communicate(timeout=120)  # far below its --timeout of 600 s
        waited = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        r = redis_lib.Redis.from_url(broker)
        for key in r.scan_iter(match=f"{prefix}*"):
            r.delete(key)
    assert proc.returncode == 1, out
    assert "a batch was quarantined whole" in out
    assert "a batch must be a JSON array of messages, got null" in out
    assert waited < 120
    from sqlalchemy import create_engine

    engine = create_engine(e2e_url)
    try:
        with engine.connect() as conn:
            kept = conn.execute(
                text("SELECT scope FROM ingest_quarantine WHERE raw_bytes = 'null'")
            ).scalar_one()
    finally:
        engine.dispose()
    assert kept == "batch"
