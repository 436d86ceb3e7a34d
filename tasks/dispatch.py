"""Enqueue follow-up work, always after the unit of work that produced it has committed.

Lookups go to the provider's own queue in small batches (one message answers several records:
per-message overhead is what limits throughput, see bench/pipeline.py); merges go to ``merge``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pipeline.enrich import Next
from pipeline.scraper_providers import SCRAPER_PROVIDERS

__all__ = ["LOOKUP_BATCH", "MERGE_BATCH", "chunks", "dispatch", "queue_for"]

# Jobs per lookup message. Each message also pays a fixed cost (the Celery round trip and its
# Flower events, reading the inputs, a handful of statements recording the batch, the dispatch);
# bench/pipeline.py at 3k tracks, 0 ms: 20 -> 113 tracks/s, 40 -> 130, 50 -> 127. At 50 ms
# latency 40 was ~5% slower than 20 (fewer messages to spread over the pool). AcousticBrainz
# asks its bulk endpoint in requests of up to 25 ids.
LOOKUP_BATCH = 40
MERGE_BATCH = 50


def chunks(items: Sequence[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def queue_for(provider: str) -> str:
    """The queue a provider's lookups run on (operators can dedicate workers to it)."""
    from celeryconfig import PROVIDER_QUEUES

    if provider in SCRAPER_PROVIDERS:
        return "provider.scrapers"
    return f"provider.{provider}" if provider in PROVIDER_QUEUES else "default"


def dispatch(nxt: Next) -> None:
    """Send the lookups and merges in ``nxt``. Call only after commit."""
    from tasks.enrich import lookup
    from tasks.merge import merge_jobs

    for provider, job_ids in sorted(nxt.lookups.items()):
        for batch in chunks(job_ids, LOOKUP_BATCH):
            lookup.apply_async(
                (provider, batch), queue=queue_for(provider), routing_key=queue_for(provider)
            )
    for batch in chunks(nxt.merges, MERGE_BATCH):
        merge_jobs.apply_async((batch,))
