"""kombu's Redis transport with a fix for the reconnect defect that killed workers (issue 20).

The defect (kombu 5.7.0, celery 5.7.0): after a lost broker connection, celery's consumer calls
``connection.collect()`` (which sets the transport's ``client`` to None) and then
``connection.close()``. Closing the default channel restores its unacknowledged messages
(``QoS.restore_unacked``), which builds a new Redis client from ``transport.client.hostname``:
``AttributeError: 'NoneType' object has no attribute 'hostname'``. That is not one of the
errors celery's ``ignore_errors`` swallows, so the worker logs ``Unrecoverable error`` and
exits. It happens whenever the channel holds unacked messages at the moment of the loss (a
prefetched or running task), so in roughly one reconnect in three under load.

The same collected connection also breaks acknowledging a task that finished after the loss
(``Message.ack -> QoS.ack -> _connparams``: ``'NoneType' object has no attribute 'client'``),
with the same result.

The fix: when the connection has been collected, skip the restore, and make any other use of
the dead channel raise a redis ``ConnectionError`` (one of the transport's connection errors,
which celery handles: a failed ack is logged and the message redelivered). Nothing is lost: with the
Redis transport, every delivered message stays in the ``unacked`` hash until it is acked, and
any consumer's ``restore_visible`` puts it back on its queue after the visibility timeout; the
sweeper re-derives the work from PostgreSQL in the meantime. Restoring "through" a collected
connection is not possible (its address is gone), and is exactly what crashed.

``celeryconfig`` selects this transport for ``redis://`` broker URLs
(``broker_transport = "tasks.kombu_redis:Transport"``); ``tests/integration/test_kombu_redis.py``
shows the stock transport raising and this one not. Drop it once kombu fixes the close path.
"""

from __future__ import annotations

from typing import Any

import redis.exceptions
from kombu.transport import redis as kombu_redis

__all__ = ["Channel", "QoS", "Transport"]


def _collected(channel: Any) -> bool:
    return getattr(getattr(channel, "connection", None), "client", None) is None


class QoS(kombu_redis.QoS):
    def restore_unacked(self, client: Any = None) -> Any:
        if client is None and _collected(self.channel):
            # Collected connection (see the module docstring): leave the messages in the
            # unacked hash for restore_visible, and forget them here.
            self._delivered.clear()
            return None
        return super().restore_unacked(client)


class Channel(kombu_redis.Channel):
    QoS = QoS

    def _connparams(self, asynchronous: bool = False) -> Any:
        if _collected(self):
            raise redis.exceptions.ConnectionError(
                "the broker connection of this channel was closed after a connection loss"
            )
        return super()._connparams(asynchronous=asynchronous)


class Transport(kombu_redis.Transport):
    Channel = Channel
