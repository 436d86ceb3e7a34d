"""Celery configuration for the SongNodes pipeline (``celery -A tasks worker|beat|flower``).

Every value can be overridden from the environment; defaults suit one machine running Redis on
localhost. The choices below are deliberate, not defaults copied from a tutorial:

* JSON only: messages carry ids and small dicts, never pickles (safe across versions and hosts).
* ``task_acks_late`` + ``task_reject_on_worker_lost``: a worker killed mid-task leaves its message
  on the broker and another worker re-runs it. Every task is idempotent, so a re-run is harmless.
* ``worker_prefetch_multiplier = 1``: provider lookups are slow and rate limited; prefetching more
  would park messages behind a throttled provider while other workers sit idle.
* One queue per provider (``provider.<name>``) so operators can dedicate workers to a provider and
  a throttled provider never blocks the others; ingest, merge, gold and maintenance have their own.
* The result backend is optional: the pipeline's join lives in PostgreSQL (``enrichment_lookups``),
  so nothing waits on task results.
"""

from __future__ import annotations

import os

from celery.schedules import crontab
from kombu import Exchange, Queue

# Celery reads every setting below as an attribute; __all__ names what code imports.
__all__ = ["PROVIDER_QUEUES", "SWEEP_INTERVAL_S", "queue_for_broker"]

broker_url = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")


def transport_for(url: str) -> str | None:
    """kombu's Redis transport with the reconnect fix (tasks/kombu_redis.py) for redis:// URLs;
    None (the URL's own transport) for anything else."""
    return "tasks.kombu_redis:Transport" if url.split("://", 1)[0] == "redis" else None


broker_transport = transport_for(broker_url)
result_backend = os.environ.get("CELERY_RESULT_BACKEND") or None
task_ignore_result = result_backend is None

task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
timezone = "UTC"
enable_utc = True

task_acks_late = True
task_reject_on_worker_lost = True
task_acks_on_failure = True
task_acks_on_timeout = True
worker_prefetch_multiplier = 1
task_time_limit = int(os.environ.get("SONGNODES_TASK_TIME_LIMIT", "600"))
task_soft_time_limit = int(os.environ.get("SONGNODES_TASK_SOFT_TIME_LIMIT", "540"))
task_track_started = True
worker_send_task_events = True  # Flower shows live task state
task_send_sent_event = True
broker_connection_retry_on_startup = True
# Keep reconnecting for ever (the default gives up after 100 tries): a worker outlives a broker
# outage of any length, and a supervisor restarts it if it exits anyway (README, issue 20).
broker_connection_max_retries = None
# A publish (a hand-off after commit) waits for a restarting broker for up to ~40 s instead of
# ~1 s; if it still fails, the task retries, and the sweeper re-derives the hand-off anyway.
task_publish_retry = True
task_publish_retry_policy = {
    "max_retries": 10,
    "interval_start": 0.5,
    "interval_step": 1.0,
    "interval_max": 5.0,
}
# With acks_late on Redis, an unacknowledged message is redelivered after the visibility timeout.
# It must exceed the longest task; the chaos tests shorten it to see redelivery quickly.
broker_transport_options: dict[str, object] = {
    "visibility_timeout": int(os.environ.get("SONGNODES_VISIBILITY_TIMEOUT", "3600")),
}
# Several deployments (or test sessions) can share one Redis without seeing each other's queues.
if os.environ.get("SONGNODES_BROKER_KEYPREFIX"):
    broker_transport_options["global_keyprefix"] = os.environ["SONGNODES_BROKER_KEYPREFIX"]

PROVIDER_QUEUES = (
    "beatport",
    "spotify",
    "musicbrainz",
    "discogs",
    "lastfm",
    "acousticbrainz",
    "deezer",
    "getsongbpm",
    "tidal",
    "scrapers",
)

def is_amqp(url: str) -> bool:
    """A RabbitMQ broker URL (``amqp://``, ``pyamqp://``, ``amqps://``)."""
    return url.split("://", 1)[0] in ("amqp", "pyamqp", "amqps")


def queues_for(url: str) -> list[Queue]:
    """Every queue the pipeline uses, declared the way the broker at ``url`` keeps them safe.

    RabbitMQ (issue 20, durable intake): durable quorum queues (replicated, on disk; they
    survive a broker restart with their messages) on a durable topic exchange (celery's
    native delayed delivery, which countdown retries need on quorum queues, refuses direct
    exchanges; exact routing keys make topic behave as direct). Messages are persistent
    (celery's default) and publishes confirmed (``confirm_publish`` below).
    Redis: the direct exchange as before (durability comes from AOF ``appendfsync always``).
    """
    names = [
        *("default", "ingest", "merge", "gold", "maintenance", "replay"),
        *(f"provider.{p}" for p in PROVIDER_QUEUES),
    ]
    return [queue_for_broker(n, url) for n in names]


def queue_for_broker(name: str, url: str) -> Queue:
    """One queue declared the way the broker at ``url`` keeps it safe (see ``queues_for``;
    also ``tasks.broker_mark``'s marker queue)."""
    if is_amqp(url):
        exchange = Exchange("songnodes.topic", type="topic", durable=True)
        return Queue(name, exchange, routing_key=name, durable=True,
                     queue_arguments={"x-queue-type": "quorum"})  # fmt: skip
    return Queue(name, Exchange("songnodes", type="direct"), routing_key=name)


task_queues = queues_for(broker_url)
task_default_queue = "default"
task_default_routing_key = "default"
if is_amqp(broker_url):
    task_default_exchange = "songnodes.topic"
    task_default_exchange_type = "topic"
    task_default_queue_type = "quorum"
    worker_detect_quorum_queues = True
    # Publisher confirms: apply_async returns only once RabbitMQ has the message (on disk for
    # a quorum queue), so an acknowledged hand-off survives a broker crash.
    broker_transport_options = {"confirm_publish": True}
else:
    task_default_exchange = "songnodes"

# Lookups are routed per call (``queue=provider.<name>``) because the provider is an argument.
task_routes = {
    "tasks.ingest.*": {"queue": "ingest", "routing_key": "ingest"},
    "tasks.merge.*": {"queue": "merge", "routing_key": "merge"},
    "tasks.gold.*": {"queue": "gold", "routing_key": "gold"},
    "tasks.maintenance.*": {"queue": "maintenance", "routing_key": "maintenance"},
    "tasks.replay.*": {"queue": "replay", "routing_key": "replay"},
}

#: How often the sweeper runs (issue 20: healing within about a minute). Sweeps never overlap
#: (an advisory lock); one not started within its interval expires rather than pile up.
SWEEP_INTERVAL_S = float(os.environ.get("SONGNODES_SWEEP_INTERVAL_S", "60"))

beat_schedule = {
    "provider-performance-rollup-nightly": {
        "task": "tasks.maintenance.rollup_provider_performance",
        "schedule": crontab(hour=2, minute=0),
    },
    "data-quality-metrics-daily": {
        "task": "tasks.maintenance.compute_data_quality_metrics",
        "schedule": crontab(hour=2, minute=30),
    },
    "provider-health-checks": {
        "task": "tasks.maintenance.check_provider_health",
        "schedule": 300.0,
    },
    "refresh-gold-views": {
        "task": "tasks.gold.refresh_views",
        "schedule": 900.0,
    },
    "drain-replay-queue": {
        "task": "tasks.replay.drain_replay_queue",
        "schedule": 30.0,
    },
    "sweep-stalled-records": {
        "task": "tasks.maintenance.sweep_stalled",
        "schedule": SWEEP_INTERVAL_S,
        "options": {"expires": SWEEP_INTERVAL_S},
    },
    # issue 18: alert rules (thresholds in alert_rules); a cron'd `songnodes alerts` does the same.
    "evaluate-alerts": {
        "task": "tasks.alerts.evaluate_alerts",
        "schedule": 60.0,
        "options": {"queue": "maintenance"},
    },
    "reap-stuck-runs": {
        "task": "tasks.maintenance.reap_stuck_runs",
        "schedule": 600.0,
    },
    "reenrich-stale-fields": {  # issue 17; keep in step with SONGNODES_REENRICH_PERIOD_S
        "task": "tasks.maintenance.reenrich_stale",
        "schedule": float(os.environ.get("SONGNODES_REENRICH_PERIOD_S", "300")),
    },
}
