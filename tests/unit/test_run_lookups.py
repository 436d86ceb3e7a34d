"""tasks.enrich.run_lookups: a message's lookups asked at once, in order, nothing lost."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

from pipeline.enrich import LookupInput
from pipeline.lookups.engine import is_back_pressure, retry_budget
from pipeline.matching import TrackQuery
from providers.errors import CircuitOpen, RateLimited, TransientError
from tasks.enrich import lookup_pool, run_lookups


def _inputs(n: int) -> list[LookupInput]:
    return [
        LookupInput(f"job-{i}", "run", f"bronze-{i}", "spotify", ["bpm"],
                    TrackQuery(artist=f"A{i}", title=f"T{i}"), None, Decimal("0.01"))
        for i in range(n)
    ]  # fmt: skip


class _Calls:
    """Counts calls in flight; ``barrier`` makes each call wait for ``parties`` calls at once."""

    def __init__(self, parties: int = 1) -> None:
        self.lock = threading.Lock()
        self.now = self.peak = self.total = 0
        self.barrier = threading.Barrier(parties, timeout=10) if parties > 1 else None

    def __call__(self, li: LookupInput) -> str:
        with self.lock:
            self.now += 1
            self.total += 1
            self.peak = max(self.peak, self.now)
        try:
            if self.barrier is not None:
                self.barrier.wait()  # raises BrokenBarrierError unless 4 calls run together
            return f"answer {li.job_id}"
        finally:
            with self.lock:
                self.now -= 1


def test_lookups_run_at_once_and_come_back_in_input_order() -> None:
    calls = _Calls(parties=4)
    batch = run_lookups(calls, _inputs(8), attempts=1, can_retry=True, threads=4)
    assert [o.li.job_id for o in batch.outcomes] == [f"job-{i}" for i in range(8)]
    assert [o.result for o in batch.outcomes] == [f"answer job-{i}" for i in range(8)]
    assert all(o.error is None for o in batch.outcomes)
    assert calls.peak == 4 and calls.total == 8
    assert batch.retry_ids == [] and batch.retry_error is None


def test_one_thread_asks_one_after_the_other() -> None:
    calls = _Calls()
    batch = run_lookups(calls, _inputs(5), attempts=1, can_retry=True, threads=1)
    assert calls.peak == 1 and len(batch.outcomes) == 5


def _limited_at(index: int, calls: list[str], slow_s: float = 0.0):  # type: ignore[no-untyped-def]
    limited = RateLimited("429", retry_after=3.0, provider="spotify")

    def call(li: LookupInput) -> str:
        calls.append(li.job_id)
        if li.job_id == f"job-{index}":
            raise limited
        time.sleep(slow_s)  # the others take a while (the throttled answer comes first)
        return "ok"

    return call, limited


def test_a_rate_limit_stops_new_lookups_and_retries_the_rest() -> None:
    """One after the other: job 2 is throttled, so jobs 3-5 are not asked; 0-1 are recorded,
    2-5 retried with the provider's error (its wait becomes the countdown)."""
    calls: list[str] = []
    call, limited = _limited_at(2, calls)
    batch = run_lookups(call, _inputs(6), attempts=1, can_retry=True, threads=1)
    assert calls == ["job-0", "job-1", "job-2"]
    assert [o.li.job_id for o in batch.outcomes] == ["job-0", "job-1"]
    assert batch.retry_ids == ["job-2", "job-3", "job-4", "job-5"]
    assert batch.retry_error is limited


def test_at_once_every_job_is_either_recorded_or_retried_never_both() -> None:
    calls: list[str] = []
    call, limited = _limited_at(1, calls, slow_s=0.05)
    batch = run_lookups(call, _inputs(12), attempts=1, can_retry=True, threads=3)
    recorded = [o.li.job_id for o in batch.outcomes]
    assert "job-1" in batch.retry_ids and batch.retry_error is limited
    assert sorted(recorded + batch.retry_ids) == sorted(f"job-{i}" for i in range(12))
    assert set(recorded) <= set(calls)  # recorded only what was asked and answered
    assert len(calls) < 12  # lookups not yet started when job 1 was throttled were not asked


def test_without_retries_left_a_throttled_lookup_is_recorded_as_given_up() -> None:
    calls: list[str] = []
    call, _ = _limited_at(0, calls)

    def with_open_circuit(li: LookupInput) -> str:
        if li.job_id == "job-1":
            raise CircuitOpen("circuit open", retry_after=5.0, provider="spotify")
        return str(call(li))

    batch = run_lookups(with_open_circuit, _inputs(3), attempts=5, can_retry=False, threads=2)
    assert batch.retry_ids == [] and len(batch.outcomes) == 3
    first, second, third = batch.outcomes
    assert first.error is not None and first.error.startswith("gave up after 5 attempts")
    assert second.status == "skipped" and "circuit open" in (second.error or "")
    assert third.error is None and third.result == "ok"


def test_messages_of_one_process_share_its_lookup_threads() -> None:
    seen: set[str] = set()

    def call(li: LookupInput) -> str:
        seen.add(threading.current_thread().name)
        time.sleep(0.01)  # long enough that one thread cannot take every lookup
        return li.job_id

    for _ in range(3):  # three messages
        batch = run_lookups(call, _inputs(6), attempts=1, can_retry=True, threads=3)
        assert [o.result for o in batch.outcomes] == [f"job-{i}" for i in range(6)]
    assert lookup_pool(3) is lookup_pool(3)
    # Three messages ran on at most three threads, all from the process's one pool of three.
    assert 1 < len(seen) <= 3
    assert all(name.startswith("lookup-3_") for name in seen)


def test_our_own_limiter_refusing_is_retried_even_without_retries_left() -> None:
    """A refusal by our shared limiter (``local``: no request sent) is back pressure, not a
    failure: on the last attempt the lookup is still left for retry, not given up."""
    refused = RateLimited("global limit 9 per 1 second reached", retry_after=0.4,
                          provider="discogs", local=True)  # fmt: skip

    def call(li: LookupInput) -> str:
        if li.job_id == "job-1":
            raise refused
        return "ok"

    batch = run_lookups(call, _inputs(3), attempts=5, can_retry=False, threads=1)
    assert [o.li.job_id for o in batch.outcomes] == ["job-0"]
    assert batch.retry_ids == ["job-1", "job-2"] and batch.retry_error is refused
    assert is_back_pressure(refused)
    assert not is_back_pressure(RateLimited("HTTP 429", retry_after=1.0, provider="discogs"))


def test_refusals_spend_no_retry_budget() -> None:
    """Attempt numbers and the retry budget count real attempts only: after 10 retries of
    which 8 were refusals, this is attempt 3 and a failure may still be retried; four real
    failures exhaust a budget of 4 however many refusals came between."""
    assert retry_budget(0, 0, 4) == (1, True)
    assert retry_budget(10, 8, 4) == (3, True)
    assert retry_budget(4, 0, 4) == (5, False)
    assert retry_budget(24, 20, 4) == (5, False)


def test_a_transient_failure_stops_nothing_else() -> None:
    """Job 1 fails transiently (a 500 twice over): it is retried, and jobs 2-4 are still asked
    and recorded; only a rate limit stops new lookups (above)."""
    calls: list[str] = []
    failed = TransientError("HTTP 500", provider="spotify")

    def call(li: LookupInput) -> str:
        calls.append(li.job_id)
        if li.job_id == "job-1":
            raise failed
        return "ok"

    batch = run_lookups(call, _inputs(5), attempts=1, can_retry=True, threads=1)
    assert calls == [f"job-{i}" for i in range(5)]
    assert [o.li.job_id for o in batch.outcomes] == ["job-0", "job-2", "job-3", "job-4"]
    assert batch.retry_ids == ["job-1"] and batch.retry_error is failed
