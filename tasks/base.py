"""The base of every SongNodes task: transient errors retry with backoff, final failures are kept.

With ``task_acks_late`` and ``task_acks_on_failure`` a task that raises is acknowledged and its
message is gone. So (issue 20):

* every task retries the errors a restarting database or broker raises (``TRANSIENT_ERRORS``)
  with exponential backoff and jitter, for several minutes, before it gives up;
* a task that finally fails leaves its input in ``failed_work`` (``pipeline.recovery``), where
  the sweeper re-runs the transient failures and an operator the others;
* if PostgreSQL cannot take that row either, the message goes back to the broker with a delay
  (the broker is then the only copy), and if both are down the input is logged in full.

Beat's own maintenance tasks set ``keep_failed = False``: the schedule runs them again anyway.
"""

from __future__ import annotations

import os
from typing import Any

import kombu.exceptions
import redis.exceptions
from celery import Task
from celery.utils.log import get_task_logger
from sqlalchemy.exc import InterfaceError, OperationalError
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_random_exponential

__all__ = [
    "DB_ERRORS",
    "DB_RETRY_S",
    "TRANSIENT_ERRORS",
    "RecoverableTask",
    "db_retry",
    "publish_countdown",
]

log = get_task_logger(__name__)


def publish_countdown(seconds: float) -> float:
    """A countdown every broker accepts: at least one second.

    On RabbitMQ quorum queues (a topic exchange) Celery 5.7 publishes a delayed message through
    native delayed delivery, routed by ``int(countdown)``; kombu's ``calculate_routing_key``
    refuses anything under 1 with ``ValueError: countdown must be a positive number``. A lookup
    retry of 0.7 s (jitter) or a 0.5 s debounce failed its task there (a chaos run in issue 20's
    setup on RabbitMQ left 28 of 420 records unmerged). Redis would take the fraction; one
    rule for every broker is simpler than a second behaviour.
    """
    return max(1.0, float(seconds))

#: Errors of a database that restarts or drops connections (psycopg's "the database system is
#: starting up", "server closed the connection unexpectedly", "connection refused").
DB_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError)
#: ... and of a broker (or the Redis state store) that is away for a moment.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    *DB_ERRORS,
    kombu.exceptions.OperationalError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    ConnectionError,
)
#: How long a task keeps retrying a database step in process before it gives up on the attempt
#: (a lookup keeps the provider's answers in memory meanwhile, so they are not asked again).
DB_RETRY_S = float(os.environ.get("SONGNODES_DB_RETRY_S", "120"))
#: Delay of the re-published message when even ``failed_work`` cannot be written.
REPUBLISH_AFTER_S = float(os.environ.get("SONGNODES_REPUBLISH_AFTER_S", "60"))


def db_retry(fn: Any, *args: Any, stop_after_s: float | None = None, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, retried on database connection errors with jittered backoff
    (random waits up to 0.5 s doubling to 10 s) for up to ``stop_after_s`` (``DB_RETRY_S``)."""
    for attempt in Retrying(
        retry=retry_if_exception_type(DB_ERRORS),
        wait=wait_random_exponential(multiplier=0.5, max=10),
        stop=stop_after_delay(DB_RETRY_S if stop_after_s is None else stop_after_s),
        reraise=True,
    ):
        with attempt:
            return fn(*args, **kwargs)
    raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover


class RecoverableTask(Task):
    """Task base (``Celery(task_cls=...)``): see the module docstring."""

    autoretry_for = TRANSIENT_ERRORS
    retry_backoff = 2
    retry_backoff_max = 60
    retry_jitter = True
    max_retries = 12
    #: Keep the input of a finally failed call in ``failed_work``.
    keep_failed = True

    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        if not self.keep_failed:
            return
        keep_failed_work(self, exc, task_id, list(args or ()), dict(kwargs or {}))


def keep_failed_work(
    task: Task, exc: BaseException, task_id: str, args: list[Any], kwargs: dict[str, Any]
) -> None:
    """Write the failed call to ``failed_work``; failing that, send it back to the broker."""
    from db.engine import session_scope
    from pipeline.recovery import record_failed_work

    error = f"{type(exc).__name__}: {exc}"
    transient = isinstance(exc, TRANSIENT_ERRORS)

    def write() -> str:
        with session_scope() as session:
            return record_failed_work(
                session, task.name, task_id, args, kwargs, error, transient
            )

    try:
        row = db_retry(write, stop_after_s=min(DB_RETRY_S, 30.0))
        log.error("task %s failed for good; kept as failed_work %s: %s", task.name, row, error)
        return
    except Exception:
        log.exception("task %s failed and failed_work could not be written", task.name)
    delivery = getattr(task.request, "delivery_info", None) or {}
    routing_key = delivery.get("routing_key")
    try:
        options: dict[str, Any] = {"countdown": REPUBLISH_AFTER_S}
        if routing_key:
            options |= {"queue": routing_key, "routing_key": routing_key}
        task.apply_async(args, kwargs, **options)
        log.error("task %s re-published in %.0f s (database unavailable)", task.name,
                  REPUBLISH_AFTER_S)
    except Exception:
        log.critical(
            "task %s LOST: neither PostgreSQL nor the broker took it back; args=%r kwargs=%r",
            task.name,
            args,
            kwargs,
            exc_info=True,
        )
