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

broker_url = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
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

_default = Exchange("songnodes", type="direct")
task_default_queue = "default"
task_default_exchange = "songnodes"
task_default_routing_key = "default"
task_queues = [
    Queue(name, _default, routing_key=name)
    for name in ("default", "ingest", "merge", "gold", "maintenance", "replay")
] + [Queue(f"provider.{p}", _default, routing_key=f"provider.{p}") for p in PROVIDER_QUEUES]

# Lookups are routed per call (``queue=provider.<name>``) because the provider is an argument.
task_routes = {
    "tasks.ingest.*": {"queue": "ingest", "routing_key": "ingest"},
    "tasks.merge.*": {"queue": "merge", "routing_key": "merge"},
    "tasks.gold.*": {"queue": "gold", "routing_key": "gold"},
    "tasks.maintenance.*": {"queue": "maintenance", "routing_key": "maintenance"},
    "tasks.replay.*": {"queue": "replay", "routing_key": "replay"},
}

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
        "schedule": 300.0,
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
