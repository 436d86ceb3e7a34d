"""Fuzz tier settings: ``SONGNODES_FUZZ_EXAMPLES`` examples per property (CI runs a short form),
and the number of generated cases actually run, printed at the end of the session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hypothesis import HealthCheck, settings

EXAMPLES = int(os.environ.get("SONGNODES_FUZZ_EXAMPLES", "300"))
#: Generated cases run, per property (each case is one input or one batch of inputs).
CASES: dict[str, int] = {}

FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,  # database round trips; speed lives in bench/, never in tests
    derandomize=bool(os.environ.get("CI")),
    # The database fixtures are session-wide or hold nothing per example.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def count(name: str, n: int = 1) -> None:
    CASES[name] = CASES.get(name, 0) + n


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if CASES:
        # "examples" are generated cases (one input, or one batch); "placed" counts the lines
        # and messages inside the batches by where they ended.
        examples = {k: v for k, v in CASES.items() if not k.startswith("placed ")}
        placed = {k[len("placed ") :]: v for k, v in CASES.items() if k.startswith("placed ")}
        detail = ", ".join(f"{k}: {v}" for k, v in sorted(examples.items()))
        line = f"fuzz cases: {sum(examples.values())} examples ({detail})"
        if placed:
            line += "; placed: " + ", ".join(f"{k}: {v}" for k, v in sorted(placed.items()))
        terminalreporter.write_line(line)


@contextmanager
def memory_broker() -> Iterator[None]:
    """Task bodies called directly dispatch enrichment: send it to kombu's in-memory transport
    (nothing consumes it), then give the app back its broker. Celery caches the connection and
    producer pools of the first broker it used, so both are dropped on the way in and out (else
    a later real worker test would publish into memory)."""
    from kombu import pools

    from pipeline.runtime import use_memory_broker
    from tasks.app import app

    before = app.conf.broker_url, app.conf.broker_transport
    use_memory_broker(app)  # the transport too: else the "memory" URL went to Redis db 0
    try:
        yield
    finally:
        app.conf.broker_url, app.conf.broker_transport = before
        pools.reset()
        app._pool = None  # type: ignore[attr-defined]
        app.amqp._producer_pool = None
