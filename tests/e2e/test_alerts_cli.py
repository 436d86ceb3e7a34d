"""``songnodes alerts`` as cron runs it: exit 0 while nothing fires, 1 while something does,
0 again after the resolution; changes go to the configured webhook (a local receiver)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from tests._receiver import receiver

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def alerts_db(postgres_available: None) -> Iterator[tuple[str, Engine]]:
    from tests.conftest import engine_on, migrated_database

    with migrated_database("sn_e2e_alerts") as url, engine_on(url) as eng:
        yield url, eng


def _alerts(db_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    drop = ("CELERY_BROKER_URL", "REDIS_URL", "SONGNODES_ALERT_WEBHOOK_URL")
    base = {k: v for k, v in os.environ.items() if k not in drop}
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "alerts", *args],
        cwd=ROOT, env=base | {"DATABASE_URL": db_url, "COLUMNS": "200"} | env,
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_exit_code_follows_what_fires_and_changes_reach_the_webhook(
    alerts_db: tuple[str, Engine],
) -> None:
    url, engine = alerts_db
    quiet = _alerts(url)
    assert quiet.returncode == 0, quiet.stderr
    assert "nothing fires" in quiet.stderr
    with engine.begin() as conn:  # a flood of bad envelopes: quarantine growth
        for _ in range(12):
            conn.execute(
                text("INSERT INTO ingest_quarantine (reason, raw_bytes, byte_length,"
                     " content_sha256, received_via) VALUES ('bad', 'x', 1, :h, 'task')"),
                {"h": uuid.uuid4().hex},
            )  # fmt: skip
    with receiver() as rec:
        hook = rec.url + "/services/T0/B0/token"
        firing = _alerts(url, "--json", SONGNODES_ALERT_WEBHOOK_URL=hook)
        assert firing.returncode == 1, firing.stderr
        body = json.loads(firing.stdout.strip().splitlines()[-1])
        got = [(a["condition"], a["subject"], a["value"], a["threshold"]) for a in body["firing"]]
        assert got == [("quarantine_growth", "ingest", 12.0, 10.0)]
        still = _alerts(url, "--history", "5", SONGNODES_ALERT_WEBHOOK_URL=hook)
        assert still.returncode == 1 and "quarantine_growth" in still.stderr
        with engine.begin() as conn:  # an operator raises the threshold in SQL
            conn.execute(text("UPDATE alert_rules SET threshold = 50 "
                              "WHERE condition = 'quarantine_growth'"))  # fmt: skip
        resolved = _alerts(url, SONGNODES_ALERT_WEBHOOK_URL=hook)
        assert resolved.returncode == 0, resolved.stderr
        assert "RESOLVED quarantine_growth [ingest] value 12 threshold 50" in resolved.stderr
        assert "nothing fires" in resolved.stderr
    # Slack format: one post per evaluation that changed something (fired, then resolved).
    assert [body["text"].splitlines()[1] for _, body in rec.posts] == [
        "FIRING quarantine_growth [ingest] value 12 threshold 10",
        "RESOLVED quarantine_growth [ingest] value 12 threshold 50",
    ]
    with engine.connect() as conn:
        events = conn.execute(
            text("SELECT event, value, threshold FROM alert_events ORDER BY id")
        ).all()
    assert [(e, float(v), float(t)) for e, v, t in events] == [
        ("firing", 12.0, 10.0),
        ("resolved", 12.0, 50.0),
    ]
