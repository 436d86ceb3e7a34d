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
re-sends all unleased work whatever the backlogs say (:func:`kept_in`), then sets the marker
again (:func:`set_mark`). A broker that cannot be read counts as having lost its messages:
re-sending is idempotent, waiting is not.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from kombu import Queue

from celeryconfig import queue_for_broker
from tasks.app import app

__all__ = ["MARK_QUEUE", "kept", "kept_in", "set_mark"]

log = logging.getLogger(__name__)

MARK_QUEUE = "songnodes.broker-mark"


def _queue() -> Queue:
    return queue_for_broker(MARK_QUEUE, str(app.conf.broker_url))


def kept_in(backlogs: Mapping[str, int]) -> bool:
    """True when ``backlogs`` (``tasks.maintenance.queue_backlogs``, which read
    :data:`MARK_QUEUE` with the other queues) hold the marker. A queue that could not be read
    counts as empty there, so an unreadable broker counts as having lost its messages."""
    return backlogs.get(MARK_QUEUE, 0) > 0


def kept() -> bool:
    """True while the marker is queued: the broker still holds what it was given."""
    from tasks.maintenance import queue_backlogs  # it imports this module

    return kept_in(queue_backlogs([MARK_QUEUE]))


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
