"""``songnodes metrics`` scraped during a real run (real worker, Redis broker, PostgreSQL), and
``songnodes alerts`` as cron runs it: the values are the database's."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, text

from tests.integration.conftest import ROOT, catalogue_rows, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def metrics_url(pipeline_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    log = tmp_path / "metrics.log"
    with log.open("wb") as out:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", "metrics", "--port", str(port)],
            cwd=ROOT, env=pipeline_env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url, timeout=5).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(log.read_text()[-3000:]) from None
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def scrape(url: str) -> Samples:
    body = urllib.request.urlopen(url, timeout=10).read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


def _by(samples: Samples, name: str, *keys: str) -> dict[tuple[str, ...], float]:
    return {
        tuple(dict(labels)[k] for k in keys): v for (n, labels), v in samples.items() if n == name
    }


def _tracks(rows: list[dict[str, str]], tag: str) -> list[dict[str, Any]]:
    return [
        {
            "kind": "track",
            "source": "it-metrics",
            "source_url": f"https://example.test/metrics/{tag}/{i}",
            "source_track_id": f"{tag}-{i}",
            "scraper_version": "it-1",
            "artist_name": r["artist"],
            "track_title": r["title"],
            "raw_json": {"artist": r["artist"], "title": r["title"]},
        }
        for i, r in enumerate(rows)
    ]


def test_scrape_during_a_real_run_matches_the_database(
    worker: Any, engine: Engine, metrics_url: str, pipeline_env: dict[str, str]
) -> None:
    from tasks.ingest import ingest_batch

    tag = f"it-metrics:{uuid.uuid4().hex[:8]}"
    ingest_batch.apply_async((_tracks(catalogue_rows(40, offset=600), tag), tag, "task"))
    during: list[Samples] = []

    def finished() -> bool:
        during.append(scrape(metrics_url))
        with engine.connect() as conn:
            row = conn.execute(
                text("SELECT count(*) AS n, count(*) FILTER (WHERE run_status = 'running') AS open"
                     " FROM enrichment_pipeline_runs WHERE triggered_by = :t"),
                {"t": tag},
            ).one()  # fmt: skip
        return bool(row.n) and row.open == 0

    wait_for(finished, 180, f"run {tag}")
    # While the run was going, some scrape saw it in flight, and counters never went down.
    assert max(s.get(("songnodes_jobs_in_flight", ()), 0) for s in during) > 0
    # Queue depth is not asserted here: whether a scrape lands while a message waits is a race
    # the worker usually wins. tests/db/test_metrics.py pins it against real Redis queues.
    totals = [sum(v for (n, _), v in s.items() if n == "songnodes_lookups_total") for s in during]
    assert totals == sorted(totals)

    after = scrape(metrics_url)
    with engine.connect() as conn:
        lookups = {
            (r.provider, r.status): (r.n, int(r.calls))
            for r in conn.execute(
                text("SELECT provider, status, count(*) AS n, sum(api_calls) AS calls "
                     "FROM enrichment_lookups WHERE status <> 'pending' GROUP BY 1, 2")
            )
        }  # fmt: skip
        runs = {
            (r.run_type, r.run_status): r.n
            for r in conn.execute(
                text("SELECT run_type, run_status, count(*) AS n FROM enrichment_pipeline_runs "
                     "GROUP BY 1, 2")
            )
        }  # fmt: skip
        timed = dict(
            conn.execute(
                text("SELECT provider, count(latency_ms) FROM enrichment_lookups "
                     "WHERE status <> 'pending' GROUP BY 1")
            ).all()
        )  # fmt: skip
        bpm = conn.execute(
            text("SELECT round(100.0 * avg((bpm IS NOT NULL)::int), 1) FROM silver_enriched_tracks")
        ).scalar_one()
    assert {k: int(v) for k, v in _by(after, "songnodes_lookups_total", "provider", "outcome")
            .items()} == {k: n for k, (n, _) in lookups.items()}  # fmt: skip
    assert {k: int(v) for k, v in _by(after, "songnodes_api_calls_total", "provider", "outcome")
            .items()} == {k: c for k, (_, c) in lookups.items()}  # fmt: skip
    exported_runs = _by(after, "songnodes_runs", "run_type", "status")
    assert {k: int(v) for k, v in exported_runs.items()} == runs
    inf = {p: int(v) for (p, le), v in _by(
        after, "songnodes_provider_latency_seconds_bucket", "provider", "le").items()
        if le == "+Inf"}  # fmt: skip
    assert inf == {p: n for p, n in timed.items()}
    assert after[("songnodes_field_fill_percent", (("field", "bpm"),))] == float(bpm)
    assert after[("songnodes_jobs_in_flight", ())] == 0
    assert after[("songnodes_ingest_to_silver_lag_seconds", ())] == 0
    for section in ("lookups", "providers", "pipeline", "alerts", "redis", "broker"):
        assert after[("songnodes_scrape_error", (("section", section),))] == 0, section

    # `songnodes alerts` from cron: evaluates, exits 1 while something fires (0 otherwise), and
    # the metrics then export exactly what it recorded.
    cli = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "alerts", "--json", "--no-notify"],
        cwd=ROOT, env=pipeline_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    import json

    result = json.loads(cli.stdout.strip().splitlines()[-1])
    assert cli.returncode == (1 if result["firing"] else 0), cli.stderr
    with engine.connect() as conn:
        state = {
            (r.condition, r.subject)
            for r in conn.execute(text("SELECT condition, subject FROM alert_state"))
        }
    assert {(a["condition"], a["subject"]) for a in result["firing"]} == state
    exported = {k for k, v in _by(scrape(metrics_url), "songnodes_alert_firing", "condition",
                                  "subject").items() if v == 1}  # fmt: skip
    assert exported == state
    assert os.environ.get("DATABASE_URL")  # the harness points this process at the same DB


def test_beat_task_evaluates_in_the_worker(worker: Any, engine: Engine) -> None:
    """The beat entry names the real task; the worker runs it on the maintenance queue and it
    records a firing, then the resolution once the SQL threshold is put back."""
    import celeryconfig
    from tasks.alerts import evaluate_alerts

    entry = celeryconfig.beat_schedule["evaluate-alerts"]
    assert entry["task"] == evaluate_alerts.name and entry["options"]["queue"] == "maintenance"

    def events() -> list[str]:
        with engine.connect() as conn:
            return list(
                conn.execute(
                    text("SELECT event FROM alert_events WHERE condition = 'quarantine_growth' "
                         "ORDER BY id")
                ).scalars()
            )  # fmt: skip

    before = events()
    with engine.begin() as conn:  # any quarantine count now breaches
        conn.execute(text("UPDATE alert_rules SET threshold = -1 "
                          "WHERE condition = 'quarantine_growth'"))  # fmt: skip
    try:
        evaluate_alerts.apply_async(queue="maintenance")
        wait_for(lambda: events()[len(before):] == ["firing"], 60, "the firing")
    finally:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alert_rules SET threshold = 1000000 "
                              "WHERE condition = 'quarantine_growth'"))  # fmt: skip
    evaluate_alerts.apply_async(queue="maintenance")
    wait_for(lambda: events()[len(before):] == ["firing", "resolved"], 60, "the resolution")
    with engine.begin() as conn:
        conn.execute(text("UPDATE alert_rules SET threshold = 10 "
                          "WHERE condition = 'quarantine_growth'"))  # fmt: skip
