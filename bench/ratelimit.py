"""Benchmark: four processes share one provider's global limit through Redis.

Four spawned processes hammer the sandbox's Deezer endpoint, limited to L requests/s by
``providers.ratelimit`` (Redis moving window), while the sandbox enforces the same L and counts
every over-limit request. Prints achieved rate / L (target >= 0.95) and the over-limit count
(target 0), then the per-lookup overhead of the client stack (limiter + breaker in Redis, retries,
redaction, parsing) against a bare httpx GET of the same URL, measured in the same run.

Run: ``.venv/bin/python -m bench.ratelimit [--seconds 30] [--rate 50]`` (needs REDIS_URL or a
Redis on 127.0.0.1:6379). Last line: the JSON result (``bench._common.emit``).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import time
import uuid

import httpx

from bench._common import emit
from pipeline.matching import TrackQuery
from providers.breaker import BreakerConfig, CircuitBreaker, RedisBreakerStore
from providers.deezer import DeezerProvider
from providers.errors import RateLimited
from providers.ratelimit import RateLimitConfig, RateLimiter, make_storage
from providers.sandbox import start_in_thread
from providers.settings import DeezerSettings

PROCESSES = 4


def _provider(base_url: str, redis_url: str, namespace: str, rate: float) -> DeezerProvider:
    import redis

    client = redis.Redis.from_url(redis_url)
    limiter = RateLimiter(
        "deezer",
        RateLimitConfig(per_second=rate),
        storage=make_storage(redis_url),
        namespace=namespace,
    )
    breaker = CircuitBreaker(
        "deezer", BreakerConfig(), store=RedisBreakerStore(client), key_prefix=namespace
    )
    return DeezerProvider(DeezerSettings(base_url=base_url), limiter=limiter, breaker=breaker)


def _worker(
    base_url: str, redis_url: str, namespace: str, rate: float, start_at: float, seconds: float,
    ids: list[tuple[str, str, str]],
) -> tuple[int, int]:  # fmt: skip
    """Lookups by Deezer id (one request each) from ``start_at`` for ``seconds``."""
    provider = _provider(base_url, redis_url, namespace, rate)
    time.sleep(max(0.0, start_at - time.time()))
    done = throttled = 0
    end = start_at + seconds
    i = 0
    while time.time() < end:
        artist, title, track_id = ids[i % len(ids)]
        # The catalogue track's own names: an id whose track does not match the query's names
        # is a stale hint and falls back to search (issue 14), a second request.
        q = TrackQuery(artist, title, provider_ids={"deezer": track_id})
        i += 1
        try:
            provider.lookup(q, ["bpm"])
            done += 1
        except RateLimited:
            throttled += 1
    provider.close()
    return done, throttled


def _overhead(
    base_url: str, redis_url: str, ids: list[tuple[str, str, str]], n: int
) -> tuple[float, float]:
    """(median ms per lookup through the stack, median ms per bare httpx GET)."""
    provider = _provider(base_url, redis_url, f"bench-oh-{uuid.uuid4().hex[:8]}", 1_000_000)
    bare = httpx.Client()
    stack_ms, bare_ms = [], []
    for i in range(n):
        _, _, track_id = ids[i % len(ids)]
        t0 = time.perf_counter()
        bare.get(f"{base_url}/track/{track_id}").json()
        bare_ms.append((time.perf_counter() - t0) * 1000)
    for i in range(n):
        artist, title, track_id = ids[i % len(ids)]
        t0 = time.perf_counter()
        provider.lookup(TrackQuery(artist, title, provider_ids={"deezer": track_id}), ["bpm"])
        stack_ms.append((time.perf_counter() - t0) * 1000)
    provider.close()
    bare.close()
    return statistics.median(stack_ms), statistics.median(bare_ms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=50.0, help="L, requests per second")
    parser.add_argument("--overhead-samples", type=int, default=300)
    parser.add_argument("--tolerance-ms", type=float, default=50.0)
    parser.add_argument("--short", action="store_true", help="CI: 5 s, 100 overhead samples")
    args = parser.parse_args()
    if args.short:
        args.seconds = min(args.seconds, 5.0)
        args.overhead_samples = min(args.overhead_samples, 100)
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    rate: float = args.rate

    # The sandbox counts arrivals; a request granted at t may arrive a few ms late while the
    # next one (granted at t + 1 s) arrives on time. TOLERANCE_MS is that allowance.
    knobs = {"rate_limit_per_second": rate, "rate_limit_tolerance_ms": args.tolerance_ms}
    handle = start_in_thread(knobs={"deezer": knobs})
    base_url = handle.env["SONGNODES_DEEZER_BASE_URL"]
    ids = [
        (t.base["artist"], t.base["title"], t.provider_id("deezer"))
        for t in handle.state.catalogue.tracks[:200]
    ]
    namespace = f"bench-rl-{uuid.uuid4().hex[:8]}"
    try:
        ctx = multiprocessing.get_context("spawn")
        start_at = time.time() + 3.0  # time for the children to import and connect
        with ctx.Pool(PROCESSES) as pool:
            results = pool.starmap(
                _worker,
                [(base_url, redis_url, namespace, rate, start_at, args.seconds, ids)] * PROCESSES,
            )
        stats = handle.stats().get("deezer", {})
        done = sum(r[0] for r in results)
        throttled = sum(r[1] for r in results)
        achieved = done / args.seconds
        over = stats.get("over_limit", 0)
        print(f"processes={PROCESSES} limit={rate:g}/s seconds={args.seconds:g}")
        print(
            f"lookups={done} achieved={achieved:.2f}/s ratio={achieved / rate:.3f} (target >= 0.95)"
        )
        print(f"sandbox requests={stats.get('requests', 0)} over_limit={over} (target 0)")
        print(f"local RateLimited raised={throttled}")

        handle.configure("deezer", rate_limit_per_second=None)
        stack, bare = _overhead(base_url, redis_url, ids, args.overhead_samples)
        print(
            f"per-lookup median: stack {stack:.2f} ms, bare httpx {bare:.2f} ms, "
            f"overhead {stack - bare:.2f} ms"
        )
    finally:
        handle.stop()
    emit("ratelimit", achieved, "req/s", rate, achieved / rate)


if __name__ == "__main__":
    main()
