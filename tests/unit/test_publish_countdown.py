"""Every countdown we publish is one RabbitMQ quorum queues accept (issue 20).

Celery 5.7 sends a delayed message to a quorum queue through kombu's native delayed delivery,
routed by ``int(countdown)``; ``calculate_routing_key`` raises for anything under 1. Checked
against kombu's own function (the one Celery calls), for the countdowns our tasks compute:
a lookup retry's (jittered, may be 0.5 s), the debounces, the lease-expiry sweep's.
"""

from __future__ import annotations

import random

import pytest
from kombu.transport.native_delayed_delivery import calculate_routing_key

from pipeline.lookups.engine import retry_countdown
from providers.errors import RateLimited, TransientError
from tasks.base import publish_countdown


def test_kombu_refuses_a_fraction_of_a_second() -> None:
    with pytest.raises(ValueError, match="positive"):
        calculate_routing_key(int(0.7), "provider.spotify")


@pytest.mark.parametrize("seconds", [0.0, 0.01, 0.5, 0.99, 1.0, 1.5, 30.0, 300.0])
def test_published_countdowns_are_routable(seconds: float) -> None:
    countdown = publish_countdown(seconds)
    assert countdown >= seconds and countdown >= 1
    assert calculate_routing_key(int(countdown), "provider.spotify").endswith("provider.spotify")


def test_lookup_retry_countdowns_are_routable_once_published() -> None:
    random.seed(20)
    errors = [
        TransientError("503", provider="x"),
        RateLimited("429", retry_after=0.2, provider="x"),
    ]
    raw = [retry_countdown(e, retries) for e in errors for retries in range(5) for _ in range(50)]
    assert min(raw) < 1, "the engine's own countdowns go under a second (jitter)"
    for seconds in raw:
        calculate_routing_key(int(publish_countdown(seconds)), "provider.x")
