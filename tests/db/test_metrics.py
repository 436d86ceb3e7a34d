"""The Prometheus collector (pipeline.metrics) against a real, freshly migrated PostgreSQL:
every family is exposed under ``songnodes_`` and its values are the database's; the figures
the report and the dashboard share are the same numbers (issue 18, item 4)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from pipeline.alerts import evaluate
from pipeline.metrics import make_registry
from pipeline.report import build_report, plot_report
from pipeline.runs import start_run
from tests.db._helpers import insert_scraped_track, insert_silver_track

pytestmark = pytest.mark.db
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def metrics_engine(postgres_available: None) -> Iterator[Engine]:
    from tests.conftest import engine_on, migrated_database

    with migrated_database("sn_metrics") as url, engine_on(url) as eng:
        yield eng


@pytest.fixture
def session(metrics_engine: Engine) -> Iterator[Session]:
    with metrics_engine.connect() as conn:
        outer = conn.begin()
        s = Session(bind=conn, join_transaction_mode="create_savepoint")
        try:
            yield s
        finally:
            s.close()
            outer.rollback()


def scrape(session: Session, **kwargs: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Scrape a registry whose collector reads through ``session``: {(sample, labels): value}."""

    @contextmanager
    def factory() -> Iterator[Session]:
        yield session

    kwargs.setdefault("broker", None)
    body = generate_latest(make_registry(factory, **kwargs)).decode()
    out = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _lookup(session: Session, run: str, provider: str, status: str, **extra: Any) -> None:
    bronze = insert_scraped_track(session.connection(), f"M {uuid.uuid4().hex[:6]}", "T")
    job = session.execute(
        text("INSERT INTO enrichment_jobs (run_id, bronze_track_id, created_at) "
             "VALUES (:r, :b, now() - interval '90 seconds') RETURNING id"),
        {"r": run, "b": bronze},
    ).scalar_one()  # fmt: skip
    session.execute(
        text(
            "INSERT INTO enrichment_lookups (job_id, provider, round, fields, status, api_calls,"
            " cost_usd, latency_ms) VALUES (:j, :p, 1, ARRAY['bpm'], :s, :c, :usd, :ms)"
        ),
        {"j": job, "p": provider, "s": status, "c": extra.get("calls", 1),
         "usd": extra.get("usd", 0), "ms": extra.get("ms")},
    )  # fmt: skip


def test_every_family_matches_the_database(session: Session) -> None:
    run = str(start_run(session, "manual", "metrics-test"))
    _lookup(session, run, "spotify", "found", calls=2, usd=0.004, ms=40)
    _lookup(session, run, "spotify", "found", calls=1, usd=0.002, ms=300)
    _lookup(session, run, "spotify", "not_found", calls=1, usd=0.002, ms=3000)
    _lookup(session, run, "deezer", "pending", calls=0)
    insert_silver_track(session.connection(), "Fill A", "T", bpm=124.0, key="8A")
    insert_silver_track(session.connection(), "Fill B", "T", bpm=126.0)
    session.execute(
        text("INSERT INTO ingest_quarantine (reason, raw_bytes, byte_length, content_sha256,"
             " received_via) VALUES ('bad', 'x', 1, :h, 'task')"),
        {"h": uuid.uuid4().hex},
    )  # fmt: skip
    session.execute(
        text("UPDATE enrichment_providers SET health_status = 'down' WHERE provider_name = 'tidal'")
    )
    evaluate(session)  # the breaker_open alert for tidal and the completeness ones
    m = scrape(session)

    def v(name: str, **labels: str) -> float:
        return m[(name, tuple(sorted(labels.items())))]

    assert v("songnodes_lookups_total", provider="spotify", outcome="found") == 2
    assert v("songnodes_lookups_total", provider="spotify", outcome="not_found") == 1
    assert v("songnodes_lookups_pending", provider="deezer") == 1
    assert v("songnodes_api_calls_total", provider="spotify", outcome="found") == 3
    assert v("songnodes_api_cost_usd_total", provider="spotify") == pytest.approx(0.008)
    # Histogram: 40 ms, 300 ms, 3000 ms.
    hist = "songnodes_provider_latency_seconds_bucket"
    assert v(hist, provider="spotify", le="0.05") == 1
    assert v(hist, provider="spotify", le="0.5") == 2
    assert v(hist, provider="spotify", le="5.0") == 3
    assert v(hist, provider="spotify", le="+Inf") == 3
    assert v("songnodes_provider_latency_seconds_count", provider="spotify") == 3
    assert v("songnodes_provider_latency_seconds_sum", provider="spotify") == pytest.approx(3.34)
    assert v("songnodes_provider_success_ratio", provider="spotify") == 0.667
    assert v("songnodes_breaker_state", provider="tidal", state="open") == 1
    assert v("songnodes_breaker_state", provider="tidal", state="closed") == 0
    assert v("songnodes_breaker_state", provider="spotify", state="closed") == 1
    assert v("songnodes_field_fill_percent", field="bpm") == 100.0
    assert v("songnodes_field_fill_percent", field="key") == 50.0
    assert v("songnodes_jobs_in_flight") == 4
    assert 90 <= v("songnodes_ingest_to_silver_lag_seconds") < 3600
    assert v("songnodes_runs", run_type="manual", status="running") == 1
    assert v("songnodes_quarantined_envelopes") == 1
    assert v("songnodes_alerts_firing", condition="breaker_open") == 1
    assert v("songnodes_alert_firing", condition="breaker_open", subject="tidal") == 1
    assert v("songnodes_alerts_firing", condition="failed_runs") == 0
    assert v("songnodes_alert_value", condition="field_completeness", subject="key") == 50.0
    assert v("songnodes_alert_threshold", condition="field_completeness", subject="key") == 80.0
    for section in ("lookups", "providers", "pipeline", "alerts", "redis"):
        assert v("songnodes_scrape_error", section=section) == 0
    assert all(name.startswith("songnodes_") for name, _ in m)


def test_queue_depths_and_rate_limit_waits_come_from_redis(
    session: Session, redis_url: str
) -> None:
    """Rate-limit waits recorded by any process (a Redis hash) and the broker's depths."""
    import redis as redis_lib

    from providers.ratelimit import WAITS_KEY

    client = redis_lib.Redis.from_url(redis_url.rsplit("/", 1)[0] + "/13")
    client.delete(WAITS_KEY)
    try:
        client.hincrbyfloat(WAITS_KEY, "musicbrainz:waits", 3)
        client.hincrbyfloat(WAITS_KEY, "musicbrainz:seconds", 1.5)
        client.hincrbyfloat(WAITS_KEY, "musicbrainz:refused", 1)
        m = scrape(session, redis_client=client, broker=lambda: {"ingest": 7, "default": 0})
    finally:
        client.delete(WAITS_KEY)
    assert m[("songnodes_rate_limit_waits_total", (("provider", "musicbrainz"),))] == 3
    assert m[("songnodes_rate_limit_wait_seconds_total", (("provider", "musicbrainz"),))] == 1.5
    assert m[("songnodes_rate_limit_refusals_total", (("provider", "musicbrainz"),))] == 1
    assert m[("songnodes_queue_depth", (("queue", "ingest"),))] == 7
    assert m[("songnodes_scrape_error", (("section", "broker"),))] == 0


def test_a_failing_source_is_reported_not_raised(session: Session) -> None:
    def broken() -> dict[str, int]:
        raise ConnectionError("broker down")

    m = scrape(session, broker=broken)
    assert m[("songnodes_scrape_error", (("section", "broker"),))] == 1
    assert m[("songnodes_scrape_error", (("section", "lookups"),))] == 0


def test_report_and_dashboard_show_the_same_figures(session: Session, tmp_path: Path) -> None:
    """Fill rate per field and provider success: ``songnodes report`` (and its plot) and the
    metrics the Grafana dashboard queries are the same numbers, from the same definitions."""
    run = str(start_run(session, "manual", "metrics-test"))
    for status in ("found", "found", "not_found"):
        _lookup(session, run, "beatport", status, ms=100)
    insert_silver_track(session.connection(), "Same A", "T", bpm=124.0, isrc="USRC17607839")
    insert_silver_track(session.connection(), "Same B", "T", bpm=124.0)
    insert_silver_track(session.connection(), "Same C", "T")
    rep = build_report(session)  # default window = the gauge's window
    m = scrape(session)
    for name, pct in rep.completeness.items():
        assert m[("songnodes_field_fill_percent", (("field", name),))] == pct
    assert rep.completeness["bpm"] == 66.7
    for p in rep.providers:
        assert m[("songnodes_provider_success_ratio", (("provider", p["provider"]),))] == float(
            p["success_rate"]
        )
    # The dashboard's panels for those figures query exactly these metrics.
    dashboard = json.loads((ROOT / "docker/grafana/dashboards/songnodes.json").read_text())
    exprs = {p["title"]: [t["expr"] for t in p.get("targets", [])] for p in dashboard["panels"]}
    assert exprs["Field fill rate (%)"] == ["songnodes_field_fill_percent"]
    assert exprs["Provider success rate (7 days)"] == ["songnodes_provider_success_ratio"]
    # And the plot draws the report's figures (the values it plotted are returned).
    plotted = plot_report(rep, tmp_path / "r.png")
    assert plotted["completeness"] == rep.completeness
    assert plotted["provider_success"] == {
        p["provider"]: float(p["success_rate"]) for p in rep.providers
    }


def test_dashboard_and_rules_query_only_exported_metrics(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every ``songnodes_*`` name in the Grafana dashboard and the Prometheus rules is a sample
    name this collector exports (a renamed metric would leave an empty panel or a dead rule)."""
    import re

    import yaml

    from providers.ratelimit import record_wait

    monkeypatch.delenv("REDIS_URL", raising=False)  # waits counted in this process's memory
    record_wait("spotify", 0.25)
    record_wait("spotify", 0.0, refused=True)
    insert_silver_track(session.connection(), "Dash A", "T", bpm=124.0)
    run = str(start_run(session, "manual", "metrics-test"))
    _lookup(session, run, "spotify", "found", ms=40)
    session.execute(
        text("UPDATE enrichment_providers SET health_status = 'down' WHERE provider_name = 'tidal'")
    )
    evaluate(session)
    exported = {name for name, _ in scrape(session, broker=lambda: {"ingest": 0})}
    dashboard = json.loads((ROOT / "docker/grafana/dashboards/songnodes.json").read_text())
    rules = yaml.safe_load((ROOT / "docker/prometheus/alerts.yml").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs += [r["expr"] for g in rules["groups"] for r in g["rules"]]
    used = {n for e in exprs for n in re.findall(r"\bsongnodes_[a-z_]+", e)}
    assert used and used - exported == set()
    # And the dashboard covers what the issue lists.
    for name in ("songnodes_queue_depth", "songnodes_lookups_total", "songnodes_api_calls_total",
                 "songnodes_provider_latency_seconds_bucket", "songnodes_api_cost_usd_total",
                 "songnodes_rate_limit_wait_seconds_total", "songnodes_breaker_state",
                 "songnodes_field_fill_percent", "songnodes_ingest_to_silver_lag_seconds",
                 "songnodes_runs", "songnodes_quarantined_envelopes",
                 "songnodes_alerts_firing"):  # fmt: skip
        assert name in used, name
