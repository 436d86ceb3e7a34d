"""The Celery application: configuration from ``celeryconfig``, per-process engine lifecycle, logs.

One SQLAlchemy engine per worker process: a forked child must never reuse the parent's sockets,
so the engine is disposed when a pool process starts and when the worker shuts down.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from celery import Celery, bootsteps, signals

from providers._http import install_log_redaction, redact_text

# Before anything logs: every record of a worker (and of the CLI, which imports this) is redacted.
install_log_redaction()

# Every task retries transient database/broker errors and keeps a final failure in PostgreSQL
# (tasks/base.py, issue 20).
app = Celery("songnodes", task_cls="tasks.base:RecoverableTask")
app.config_from_object("celeryconfig")
app.conf.include = [
    "tasks.ingest",
    "tasks.enrich",
    "tasks.merge",
    "tasks.gold",
    "tasks.maintenance",
    "tasks.replay",  # issue #5: replay queue drain + replay jobs
    "tasks.alerts",  # issue 18: alert evaluation
    "tasks.reenrich",  # issue 17: scheduled re-enrichment of stale fields
]


# Modules every pool process imports on its first tasks. Importing them in the parent, before
# the pool forks, lets the children share those pages copy-on-write instead of each holding its
# own copy; gc.freeze() keeps the collector from touching (and so copying) the parent's objects.
PRELOAD = (
    "providers.registry",
    "providers.base",
    "providers.ratelimit",
    "providers.breaker",
    "pipeline.enrich",
    "pipeline.merge",
    "pipeline.gold",
    "pipeline.replay",
    "pipeline.maintenance",
    "pipeline.scraper_providers",
    "sqlalchemy.dialects.postgresql.psycopg",
)


@signals.worker_init.connect
def _preload_before_fork(**_: Any) -> None:
    import gc
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    from providers.base import shared_ssl_context
    from providers.registry import load_provider_classes

    load_provider_classes()
    shared_ssl_context()
    gc.freeze()


@signals.worker_process_init.connect
def _fresh_engine_after_fork(**_: Any) -> None:
    from db.engine import dispose_engine

    dispose_engine()


@signals.worker_shutdown.connect
def _dispose_engine_at_shutdown(**_: Any) -> None:
    from db.engine import dispose_engine

    dispose_engine()


@signals.worker_ready.connect
def _warn_without_shared_state(**_: Any) -> None:
    # Without REDIS_URL every worker process keeps its own rate-limit counters and breakers:
    # "global" limits would multiply by the number of processes. Fine for the in-process demo,
    # wrong for a real deployment, so say it loudly at start-up.
    broker = str(app.conf.broker_url or "")
    if not os.environ.get("REDIS_URL") and not broker.startswith("memory://"):
        logging.getLogger("songnodes").warning(
            "REDIS_URL is not set: provider rate limits and circuit breakers are per process, "
            "not shared across workers. Set REDIS_URL (e.g. redis://127.0.0.1:6379/1)."
        )


class SweepOnConnect(bootsteps.StartStopStep):
    """Consumer step: each time the worker (re)connects to the broker, send a sweep (issue 20).

    A reconnect follows a broker restart, which may have lost every queued message; the sweep
    (``tasks.maintenance.sweep_stalled``) then re-sends what is owed at once (age 0) instead
    of after the next beat tick plus the age threshold. Queues that still hold messages are
    left alone, and the reconnect sweeps of many workers within a few seconds run once.
    ``SONGNODES_SWEEP_ON_CONNECT=0`` turns it off.
    """

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def start(self, c: Any) -> None:
        if os.environ.get("SONGNODES_SWEEP_ON_CONNECT", "1") != "1":
            return
        reconnect = getattr(c, "restart_count", 0) > 0
        try:
            app.send_task(
                "tasks.maintenance.sweep_stalled",
                kwargs={
                    "older_than_s": 0 if reconnect else None,
                    "reason": "reconnect" if reconnect else "start",
                },
                queue="maintenance",
                routing_key="maintenance",
            )
        except Exception:  # the broker went again: the next connect sends it
            logging.getLogger("songnodes").warning(
                "could not send the sweep after connecting", exc_info=True
            )


app.steps["consumer"].add(SweepOnConnect)


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: what log shippers and ``jq`` read without regexes."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in ("task_id", "task_name", "provider", "job_id", "run_id"):
            if hasattr(record, key):
                payload[key] = getattr(record, key)
        if record.exc_info:
            payload["exc"] = redact_text(self.formatException(record.exc_info))
        return json.dumps(payload, default=str, ensure_ascii=False)


@signals.after_setup_logger.connect
@signals.after_setup_task_logger.connect
def _json_logs(logger: logging.Logger, **_: Any) -> None:
    if os.environ.get("SONGNODES_LOG_FORMAT", "json") != "json":
        return
    for handler in logger.handlers:
        handler.setFormatter(JsonLogFormatter())


@signals.before_task_publish.connect
def _redact_task_arguments(headers: dict[str, Any] | None = None, **_: Any) -> None:
    # Flower (and `celery inspect`) show argsrepr/kwargsrepr: never a credential in them.
    if headers:
        for key in ("argsrepr", "kwargsrepr"):
            if isinstance(headers.get(key), str):
                headers[key] = redact_text(headers[key])


__all__ = ["JsonLogFormatter", "SweepOnConnect", "app"]
