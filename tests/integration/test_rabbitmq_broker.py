"""RabbitMQ as a supported broker (issue 20, durable intake), on the local RabbitMQ.

The queues ``celeryconfig.queues_for`` declares for an ``amqp://`` URL are durable quorum
queues on a durable topic exchange, and publishes are confirmed. Checked on the real broker
with uniquely named copies of those queues (same type, arguments and exchange type), so this
never touches queues another test session or deployment on the shared broker uses; the
broker-restart runs on RabbitMQ use a private node (tests/integration/test_chaos_restarts.py).
"""

from __future__ import annotations

import uuid

import pytest
from kombu import Connection, Exchange, Queue

from tests.conftest import require_service

pytestmark = pytest.mark.integration

URL = "amqp://guest:guest@127.0.0.1:5672//"


def test_amqp_configuration_is_durable_quorum_with_confirms() -> None:
    import celeryconfig

    queues = celeryconfig.queues_for(URL)
    assert {q.name for q in queues} == {q.name for q in celeryconfig.queues_for("redis://x/0")}
    for q in queues:
        assert q.durable and q.queue_arguments == {"x-queue-type": "quorum"}
        assert q.exchange.type == "topic" and q.exchange.durable
    assert celeryconfig.is_amqp(URL) and not celeryconfig.is_amqp("redis://127.0.0.1:6379/0")


def test_quorum_queues_survive_redeclaration_and_confirm_publishes() -> None:
    """On the local RabbitMQ: the configured queue kind really is quorum (redeclaring one as
    classic is refused with PRECONDITION_FAILED), a confirmed publish reaches it as a
    persistent message, and it is consumed back intact."""
    import celeryconfig

    require_service("RabbitMQ", "127.0.0.1", 5672)
    suffix = uuid.uuid4().hex[:8]
    template = celeryconfig.queues_for(URL)[1]  # "ingest"
    exchange = Exchange(f"sn-test-{suffix}", type=template.exchange.type, durable=True)
    queue = Queue(
        f"{template.name}-{suffix}",
        exchange,
        routing_key=template.routing_key,
        durable=True,
        queue_arguments=template.queue_arguments,
    )
    with Connection(URL, transport_options={"confirm_publish": True}) as conn:
        channel = conn.channel()
        try:
            queue(channel).declare()
            with conn.Producer(channel) as producer:
                producer.publish(
                    {"kind": "track", "n": 1},
                    exchange=exchange,
                    routing_key=template.routing_key,
                    delivery_mode=2,
                    retry=True,
                )
            message = queue(channel).get(no_ack=False)
            assert message is not None and message.payload == {"kind": "track", "n": 1}
            assert message.properties.get("delivery_mode") == 2, "persistent"
            message.ack()
            other = conn.channel()
            classic = Queue(queue.name, exchange, routing_key=template.routing_key, durable=True,
                            queue_arguments={"x-queue-type": "classic"})
            with pytest.raises(conn.channel_errors, match="PRECONDITION_FAILED"):
                classic(other).declare()
        finally:
            cleanup = conn.channel()
            queue(cleanup).delete()
            exchange(cleanup).delete()
