"""Where the CLI's work runs: a real broker and workers, or an in-process worker.

With ``CELERY_BROKER_URL`` set, the CLI only enqueues; workers started with
``celery -A tasks worker`` do the work. Without it, the CLI starts a Celery worker in a thread on
kombu's in-memory transport, consuming every queue: the same tasks, the same code path, nothing
to install. (``celery.contrib.testing.worker.start_worker`` is Celery's own embedded worker.)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

__all__ = ["ALL_QUEUES", "in_process", "use_memory_broker", "worker_context"]


def _queues() -> list[str]:
    import celeryconfig

    return [q.name for q in celeryconfig.task_queues]


ALL_QUEUES = _queues()


def in_process() -> bool:
    """True when no broker is configured: the CLI must run its own worker."""
    return not os.environ.get("CELERY_BROKER_URL")


def use_memory_broker(app: Any) -> None:
    """Point ``app`` at kombu's in-memory transport, in this process only.

    The transport is reset too: ``celeryconfig`` names the Redis transport class (issue 20's
    reconnect fix) for its default ``redis://`` URL, and a transport class set explicitly wins
    over the URL's scheme. Setting only the URL left the "in-process" worker on Redis at
    localhost:6379/0: it needed a Redis the README promises it does not, and it shared that
    database's queues with any worker or CLI run on the machine (found when a second checkout's
    bench consumed the CLI's ingest batches and the CLI consumed the bench's).
    """
    from kombu import pools

    pools.reset()  # closes and forgets pools built for the previous broker
    app._pool = None
    app.amqp._producer_pool = None
    app.conf.broker_url = "memory://localhost/"
    app.conf.broker_transport = None


@contextmanager
def worker_context(concurrency: int = 8) -> Iterator[Any]:
    """An in-process worker when there is no broker; nothing otherwise."""
    from tasks.app import app

    if not in_process():
        with nullcontext() as none:
            yield none
        return
    from celery.contrib.testing.worker import start_worker

    use_memory_broker(app)
    app.conf.result_backend = None
    app.conf.task_ignore_result = True
    with start_worker(
        app,
        pool="threads",
        concurrency=concurrency,
        perform_ping_check=False,
        queues=ALL_QUEUES,
        loglevel="WARNING",
        shutdown_timeout=30.0,
    ) as worker:
        yield worker
