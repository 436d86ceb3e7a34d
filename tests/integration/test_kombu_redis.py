"""The kombu Redis reconnect defect, reproduced deterministically, and the workaround.

Exactly what celery's consumer does after a lost broker connection
(``Consumer.on_connection_error_after_connected``: ``connection.collect()``, then
``connection.close()``), with an unacknowledged message on the default channel, against a
private redis-server. The stock transport raises the ``AttributeError`` that made workers exit
(issue 20); ``tasks.kombu_redis.Transport`` closes cleanly and the message is still in Redis'
unacked hash, so it is not lost.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib
from kombu import Connection, Queue

from tests.integration.conftest import PrivateRedis

pytestmark = pytest.mark.redis


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _close_after_collect(server: PrivateRedis, transport: str | None) -> None:
    """Close a channel that holds one unacked message after its connection was collected.

    This is the state the workers' ``Unrecoverable error`` tracebacks show: after a lost
    connection, celery's consumer runs ``connection.collect()`` (which sets the transport's
    ``client`` to None: ``Connection._do_close_transport``) and then ``connection.close()``,
    which closes the consumer's channel a second time when its first close was cut short by
    the connection error; that close restores the unacked messages, through the collected
    connection (``Channel.close -> QoS.restore_unacked -> _connparams``). Which close gets
    cut short depends on timing (8 of 28 reconnects in the issue); here the state is built
    directly, so the test is deterministic."""
    queue = f"kombu-defect-{uuid.uuid4().hex[:8]}"
    conn = Connection(f"{server.url}/0", transport=transport)
    with conn.Producer() as producer:
        producer.publish({"n": 1}, routing_key=queue, declare=[Queue(queue)])
    channel = conn.channel()
    assert channel.basic_get(queue, no_ack=False) is not None, "delivered, not acked"
    conn.transport.client = None  # what collect() leaves behind
    channel.close()


def test_stock_transport_raises_on_close_after_collect(private_redis: PrivateRedis) -> None:
    """The defect exists in the installed kombu: if this starts failing, kombu fixed it and
    tasks/kombu_redis.py can go."""
    with pytest.raises(AttributeError, match="hostname"):
        _close_after_collect(private_redis, None)


def test_workaround_transport_closes_and_keeps_the_message(private_redis: PrivateRedis) -> None:
    """No AttributeError, and the message is still in Redis' unacked hash, where any consumer's
    restore_visible puts it back on its queue after the visibility timeout: not lost."""
    _close_after_collect(private_redis, "tasks.kombu_redis:Transport")
    client = redis_lib.Redis.from_url(f"{private_redis.url}/0")
    assert client.hlen("unacked") == 1, "the unacked message waits for restore_visible"


def test_celeryconfig_selects_the_workaround_for_redis() -> None:
    import celeryconfig

    assert celeryconfig.transport_for("redis://127.0.0.1:6379/0") == "tasks.kombu_redis:Transport"
    assert celeryconfig.transport_for("amqp://guest:guest@127.0.0.1:5672//") is None


def _ack_after_collect(server: PrivateRedis, transport: str | None) -> tuple[Connection, Any]:
    """Ack, after the loss, a message delivered before it (a task that finished late)."""
    queue = f"kombu-defect-{uuid.uuid4().hex[:8]}"
    conn = Connection(f"{server.url}/0", transport=transport)
    with conn.Producer() as producer:
        producer.publish({"n": 1}, routing_key=queue, declare=[Queue(queue)])
    channel = conn.channel()
    message = channel.basic_get(queue, no_ack=False)
    assert message is not None
    # What the cut-short close and collect() leave behind: pools dropped, no transport.
    channel._disconnect_pools()
    conn.transport.client = None
    channel.connection = None
    return conn, message


def test_stock_transport_cannot_ack_after_collect(private_redis: PrivateRedis) -> None:
    _, message = _ack_after_collect(private_redis, None)
    with pytest.raises(AttributeError, match="'NoneType' object has no attribute 'client'"):
        message.ack()


def test_workaround_ack_after_collect_is_a_connection_error(private_redis: PrivateRedis) -> None:
    """A connection error, which celery's ``ack_log_error`` logs and survives; the message
    stays unacked in Redis and is redelivered after the visibility timeout."""
    conn, message = _ack_after_collect(private_redis, "tasks.kombu_redis:Transport")
    with pytest.raises(conn.connection_errors):
        message.ack()
    client = redis_lib.Redis.from_url(f"{private_redis.url}/0")
    assert client.hlen("unacked") == 1
