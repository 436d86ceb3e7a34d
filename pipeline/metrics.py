"""Prometheus metrics (``songnodes metrics --port N``), computed at scrape time.

Every value is derived from PostgreSQL (the system of record), Redis (breakers, rate-limit wait
counters) and the broker (queue depths) when Prometheus scrapes, by one custom collector. So the
endpoint is correct however many worker processes and hosts run, needs no multiprocess
directory, and any number of ``songnodes metrics`` replicas report the same figures. Counters
(``*_total``) are sums over tables that only grow; deleting runs (which cascades to their
lookups) resets them, which Prometheus' ``rate()``/``increase()`` handle like a restart.
Each metric is documented in ``docs/operations.md`` ("Monitoring").
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from sqlalchemy import text
from sqlalchemy.orm import Session

from pipeline import figures

__all__ = [
    "LATENCY_BUCKETS_S",
    "BrokerProbe",
    "SongNodesCollector",
    "make_registry",
    "queue_depths",
    "serve",
]

log = logging.getLogger("songnodes.metrics")

#: Upper bounds (seconds) of the provider latency histogram.
LATENCY_BUCKETS_S = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
OUTCOMES = ("found", "not_found", "unavailable", "failed", "skipped")
BREAKER_STATES = ("closed", "open", "half_open")


def queue_depths(app: Any | None = None, connection: Any | None = None) -> dict[str, int]:
    """Messages waiting in every declared queue, asked of the broker.

    AMQP: a passive ``queue_declare`` (the broker reports the count, nothing changes). kombu's
    virtual transports (Redis) answer a passive declare through ``_has_queue``, whose EXISTS
    ignores ``global_keyprefix`` (SONGNODES_BROKER_KEYPREFIX), so a prefixed queue always looks
    missing; for them we ask the channel's own ``_size`` (LLEN over the priority lists, prefix
    applied), the same call the passive declare would make for its count."""
    from kombu.exceptions import ChannelError

    import celeryconfig

    if app is None:
        from tasks.app import app as celery_app

        app = celery_app
    out: dict[str, int] = {}
    with contextlib.ExitStack() as stack:
        conn = connection or stack.enter_context(app.connection_for_read())
        channel = conn.channel()
        try:
            size = getattr(channel, "_size", None)
            for queue in celeryconfig.task_queues:
                if size is not None:
                    out[queue.name] = int(size(queue.name))
                    continue
                try:
                    ok = channel.queue_declare(queue=queue.name, passive=True)
                    out[queue.name] = int(ok.message_count)
                except ChannelError:  # not declared yet: nothing waiting
                    out[queue.name] = 0
                    channel = conn.channel()  # AMQP closes a channel after a 404
        finally:
            channel.close()
    return out


class BrokerProbe:
    """``queue_depths`` over one broker connection kept between scrapes (connecting anew each
    time cost more than asking the 16 queues); reconnects after an error. Thread-safe:
    prometheus-client serves concurrent scrapes from threads."""

    def __init__(self, app: Any | None = None) -> None:
        import threading

        if app is None:
            from tasks.app import app as celery_app

            app = celery_app
        self._app = app
        self._conn: Any | None = None
        self._lock = threading.Lock()

    def __call__(self) -> dict[str, int]:
        with self._lock:
            if self._conn is None:
                self._conn = self._app.connection_for_read()
            try:
                return queue_depths(self._app, self._conn)
            except Exception:
                self._conn.release()
                self._conn = None
                raise


class SongNodesCollector(Collector):
    """Collects every ``songnodes_*`` metric from the database, Redis and the broker."""

    def __init__(
        self,
        session_factory: Callable[[], Any],
        redis_client: object | None = None,
        broker: Callable[[], dict[str, int]] | None = queue_depths,
    ) -> None:
        self._session_factory = session_factory
        self._redis = redis_client
        self._broker = broker

    def describe(self) -> list[Metric]:
        return []  # computed at scrape time; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        errors = GaugeMetricFamily(
            "songnodes_scrape_error",
            "1 when a section of this scrape failed (its metrics are missing)",
            labels=["section"],
        )
        with self._session_factory() as session:
            for name, section in (
                ("lookups", self._lookups),
                ("providers", self._providers),
                ("pipeline", self._pipeline),
                ("alerts", self._alerts),
            ):
                try:
                    yield from section(session)
                    errors.add_metric([name], 0)
                except Exception:
                    log.exception("metrics section %s failed", name)
                    session.rollback()
                    errors.add_metric([name], 1)
        for name, section2 in (("redis", self._waits), ("broker", self._queues)):
            try:
                yield from section2()
                errors.add_metric([name], 0)
            except Exception:
                log.exception("metrics section %s failed", name)
                errors.add_metric([name], 1)
        yield errors
        took = GaugeMetricFamily(
            "songnodes_scrape_duration_seconds", "How long this scrape took to compute"
        )
        took.add_metric([], time.perf_counter() - started)
        yield took

    # --- sections -------------------------------------------------------------------------------
    def _lookups(self, session: Session) -> Iterator[Metric]:
        # ONE pass over enrichment_lookups (the largest table a scrape reads) serves the
        # counters, the histogram and the windowed success ratio: a second scan for the ratio
        # cost as much as the first (bench.monitoring).
        buckets = ", ".join(
            f"count(*) FILTER (WHERE latency_ms <= {int(b * 1000)}) AS le{i}"
            for i, b in enumerate(LATENCY_BUCKETS_S)
        )
        since = session.execute(text("SELECT now()")).scalar_one() - dt.timedelta(
            days=figures.REPORT_DAYS
        )
        rows = session.execute(
            text(f"""
                SELECT provider, status, count(*) AS n, sum(api_calls) AS calls,
                       sum(cost_usd) AS cost, count(latency_ms) AS timed,
                       coalesce(sum(latency_ms), 0) AS latency_sum,
                       count(*) FILTER (WHERE updated_at >= :since) AS recent, {buckets}
                FROM enrichment_lookups GROUP BY provider, status ORDER BY 1, 2"""),
            {"since": since},
        ).all()
        lookups = CounterMetricFamily(
            "songnodes_lookups", "Answered provider lookups", labels=["provider", "outcome"]
        )
        pending = GaugeMetricFamily(
            "songnodes_lookups_pending", "Lookups waiting for an answer", labels=["provider"]
        )
        calls = CounterMetricFamily(
            "songnodes_api_calls",
            "Provider API requests made by lookups",
            labels=["provider", "outcome"],
        )
        cost = CounterMetricFamily(
            "songnodes_api_cost_usd", "Cost of provider API requests (USD)", labels=["provider"]
        )
        latency = HistogramMetricFamily(
            "songnodes_provider_latency_seconds",
            "Time one lookup took against its provider (answered lookups)",
            labels=["provider"],
        )
        success = GaugeMetricFamily(
            "songnodes_provider_success_ratio",
            f"Share of answered lookups that found the track, last {figures.REPORT_DAYS} days "
            "(the figure `songnodes report` shows)",
            labels=["provider"],
        )
        per_provider: dict[str, dict[str, float]] = {}
        for r in rows:
            acc = per_provider.setdefault(
                r.provider, {"cost": 0.0, "timed": 0, "sum": 0.0, "answered": 0, "found": 0}
            )
            acc["cost"] += float(r.cost or 0)
            if r.status == "pending":
                pending.add_metric([r.provider], r.n)
                continue
            # Same predicate as figures.provider_success (answered, updated in the window).
            acc["answered"] += r.recent
            acc["found"] += r.recent if r.status == "found" else 0
            lookups.add_metric([r.provider, r.status], r.n)
            calls.add_metric([r.provider, r.status], int(r.calls or 0))
            acc["timed"] += r.timed
            acc["sum"] += float(r.latency_sum) / 1000
            for i in range(len(LATENCY_BUCKETS_S)):
                acc[f"le{i}"] = acc.get(f"le{i}", 0) + getattr(r, f"le{i}")
        for provider, acc in per_provider.items():
            cost.add_metric([provider], acc["cost"])
            cumulative = [
                (floatToGoString(b), acc.get(f"le{i}", 0)) for i, b in enumerate(LATENCY_BUCKETS_S)
            ] + [("+Inf", acc["timed"])]
            latency.add_metric([provider], cumulative, acc["sum"])
            if acc["answered"]:
                ratio = figures.ProviderSuccess(provider, int(acc["answered"]), int(acc["found"]))
                success.add_metric([provider], ratio.rate)
        yield from (lookups, pending, calls, cost, latency, success)

    def _providers(self, session: Session) -> Iterator[Metric]:
        states = figures.breaker_states(session, self._redis)
        breaker = GaugeMetricFamily(
            "songnodes_breaker_state",
            "1 for the provider's current circuit-breaker state",
            labels=["provider", "state"],
        )
        for provider, state in states.items():
            for s in BREAKER_STATES:
                breaker.add_metric([provider, s], 1 if s == state else 0)
        yield breaker

    def _pipeline(self, session: Session) -> Iterator[Metric]:
        fill = GaugeMetricFamily(
            "songnodes_field_fill_percent",
            "Percent of silver tracks with the field set (as in `songnodes report`)",
            labels=["field"],
        )
        for name, pct in figures.field_fill_rates(session).items():
            fill.add_metric([name], pct)
        yield fill
        lag = GaugeMetricFamily(
            "songnodes_ingest_to_silver_lag_seconds",
            "Age of the oldest record still on its way to silver (open job), 0 when none",
        )
        open_jobs = GaugeMetricFamily(
            "songnodes_jobs_in_flight", "Records between bronze and silver (open jobs)"
        )
        n_open, age = session.execute(
            text(
                "SELECT count(*), extract(epoch FROM now() - min(created_at)) "
                "FROM enrichment_jobs WHERE status IN ('enriching', 'merging')"
            )
        ).one()
        lag.add_metric([], float(age or 0))
        open_jobs.add_metric([], n_open)
        yield from (lag, open_jobs)
        runs = GaugeMetricFamily(
            "songnodes_runs", "Pipeline runs by type and status", labels=["run_type", "status"]
        )
        for run_type, status, n in session.execute(
            text(
                "SELECT run_type, run_status, count(*) FROM enrichment_pipeline_runs "
                "GROUP BY 1, 2 ORDER BY 1, 2"
            )
        ):
            runs.add_metric([run_type, status], n)
        yield runs
        quarantine = GaugeMetricFamily(
            "songnodes_quarantined_envelopes", "Envelopes held in ingest_quarantine"
        )
        quarantine.add_metric(
            [], session.execute(text("SELECT count(*) FROM ingest_quarantine")).scalar_one()
        )
        yield quarantine

    def _alerts(self, session: Session) -> Iterator[Metric]:
        from pipeline.alerts import CONDITIONS, firing

        per_condition = dict.fromkeys(CONDITIONS, 0)
        one = GaugeMetricFamily(
            "songnodes_alert_firing",
            "1 per condition x subject firing at the last alert evaluation",
            labels=["condition", "subject"],
        )
        value = GaugeMetricFamily(
            "songnodes_alert_value",
            "Measured value of a firing alert (its threshold: songnodes_alert_threshold)",
            labels=["condition", "subject"],
        )
        threshold = GaugeMetricFamily(
            "songnodes_alert_threshold",
            "Threshold of a firing alert (alert_rules)",
            labels=["condition", "subject"],
        )
        for a in firing(session):
            per_condition[a.condition] = per_condition.get(a.condition, 0) + 1
            one.add_metric([a.condition, a.subject], 1)
            value.add_metric([a.condition, a.subject], a.value)
            threshold.add_metric([a.condition, a.subject], a.threshold)
        count = GaugeMetricFamily(
            "songnodes_alerts_firing", "Subjects firing per condition", labels=["condition"]
        )
        for condition, n in per_condition.items():
            count.add_metric([condition], n)
        yield from (count, one, value, threshold)

    def _waits(self) -> Iterator[Metric]:
        import redis

        from providers.ratelimit import read_waits

        client = self._redis if isinstance(self._redis, redis.Redis) else None
        raw = read_waits(client)
        waits = CounterMetricFamily(
            "songnodes_rate_limit_waits",
            "Times our global rate limiter made a request wait",
            labels=["provider"],
        )
        seconds = CounterMetricFamily(
            "songnodes_rate_limit_wait_seconds",
            "Seconds requests waited for our global rate limiter",
            labels=["provider"],
        )
        refused = CounterMetricFamily(
            "songnodes_rate_limit_refusals",
            "Requests our limiter refused (the task retried later instead of waiting)",
            labels=["provider"],
        )
        target = {"waits": waits, "seconds": seconds, "refused": refused}
        for key, v in sorted(raw.items()):
            provider, _, kind = key.rpartition(":")
            if kind in target:
                target[kind].add_metric([provider], v)
        yield from (waits, seconds, refused)

    def _queues(self) -> Iterator[Metric]:
        if self._broker is None:
            return
        depth = GaugeMetricFamily(
            "songnodes_queue_depth", "Messages waiting in a Celery queue", labels=["queue"]
        )
        for queue, n in sorted(self._broker().items()):
            depth.add_metric([queue], n)
        yield depth


def make_registry(
    session_factory: Callable[[], Any] | None = None,
    redis_client: object | None = None,
    broker: Callable[[], dict[str, int]] | None = queue_depths,
) -> CollectorRegistry:
    """A registry holding only the SongNodes collector (no per-process metrics: they would
    describe the exporter, not the pipeline)."""
    if session_factory is None:
        from db.engine import session_scope

        session_factory = session_scope
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SongNodesCollector(session_factory, redis_client, broker))
    return registry


def serve(port: int, host: str = "127.0.0.1") -> None:
    """Serve ``/metrics`` until interrupted. Queue depths need ``CELERY_BROKER_URL`` (the
    in-process memory broker of the CLI has no queues another process could see)."""
    import os
    import threading

    from pipeline.figures import redis_from_env

    broker = BrokerProbe() if os.environ.get("CELERY_BROKER_URL") else None
    registry = make_registry(redis_client=redis_from_env(), broker=broker)
    server, thread = start_http_server(port, addr=host, registry=registry)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        thread.join(5)
