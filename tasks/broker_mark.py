"""Did the broker keep its messages? A marker in a queue nobody consumes (issue 20).

The sweeper leaves a queue's work alone while the queue holds messages: a broker that kept its
messages (Redis with AOF, RabbitMQ quorum queues) still has them, and re-sending would only
double them. After a broker that restarted *empty*, that reading is wrong as soon as anything
new arrives: the first new message makes the queue look busy, and every older message that
died with the broker waited for the age threshold and a later sweep (a chaos run: 365 lookups
stalled 90 s after a Redis restart).

So the broker holds one persistent marker message in ``songnodes.broker-mark`` (declared like
the pipeline's queues: a durable quorum queue on RabbitMQ). While it is there, the broker kept
what it was given; when it is gone, the broker lost every message queued before, and the sweep
re-sends all unleased work whatever the backlogs say (:func:`kept`), then sets the marker
again (:func:`set_mark`). A broker that cannot be read counts as having lost its messages:
re-sending is idempotent, waiting is not.
"""

from __future__ import annotations

import logging
import time

from kombu import Queue

from celeryconfig import queue_for_broker
from tasks.app import app

__all__ = ["MARK_QUEUE", "kept", "set_mark"]

log = logging.getLogger(__name__)

MARK_QUEUE = "songnodes.broker-mark"


def _queue() -> Queue:
    return queue_for_broker(MARK_QUEUE, str(app.conf.broker_url))


def kept() -> bool:
    """True while the marker is queued: the broker still holds what it was given."""
    try:
        with app.connection_for_read() as conn:
            ok = _queue()(conn.channel()).queue_declare()
            return bool(ok and ok.message_count > 0)
    except Exception:
        log.warning("could not read the broker's marker; sweeping as if it lost its messages",
                    exc_info=True)  # fmt: skip
        return False


def set_mark() -> None:
    """Queue the marker (after a sweep that re-sent what the broker lost)."""
    queue = _queue()
    try:
        with app.connection_for_write() as conn:
            conn.Producer().publish(
                {"marked_at": time.time()}, exchange=queue.exchange, routing_key=MARK_QUEUE,
                declare=[queue], delivery_mode=2, retry=True,
            )  # fmt: skip
    except Exception:  # the next sweep finds it missing and re-sends again: idempotent
        log.warning("could not set the broker's marker", exc_info=True)
