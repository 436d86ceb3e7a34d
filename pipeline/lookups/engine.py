"""The lookup engine: ask a provider about a batch of jobs, journal each answer, record them.

One engine, two drivers: the Celery fan-out (``tasks.enrich.lookup``: lease, :func:`ask_leased`,
:func:`record_batch`, dispatch, retry) and replay's live rounds (``pipeline.replay``, through
:func:`ask_each`). Asking itself is :func:`pipeline.lookups.clients.ask` (live, scraper or
stored answers behind one call).

Retry policy: rate limits and transient errors retry the *remaining* jobs with a countdown
(:func:`retry_countdown`: the wait the provider or our global limiter asked for, else
exponential backoff with jitter); a refusal by our own limiter costs no retry
(:func:`retry_budget`). When retries run out, or the provider's circuit is open, or
it refuses our credentials, the lookup is recorded as failed/skipped and the waterfall moves on
to the next priority: one bad provider never stalls a record.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from functools import partial

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from db.engine import session_scope
from pipeline.enrich import Next, lookup_inputs, record_outcomes
from pipeline.lookups import journal, journal_writes, replies
from pipeline.lookups.clients import Client, ask
from pipeline.lookups.outcome import Ask, LookupInput, LookupOutcome
from pipeline.recovery import lease_lookups, release_lookups, renew_leases
from providers.base import HttpProvider
from providers.contract import LookupResult
from providers.errors import CircuitOpen, ProviderError, RateLimited, TransientError
from providers.exchange import CannedReply

__all__ = [
    "LEASE_S",
    "LOOKUP_THREADS",
    "LeaseHeartbeat",
    "Leased",
    "LookupBatch",
    "LookupFn",
    "ask_each",
    "ask_leased",
    "is_back_pressure",
    "lease",
    "lookup_pool",
    "outcome_of",
    "record_batch",
    "release",
    "retry_budget",
    "retry_countdown",
    "run_lookups",
]

log = logging.getLogger(__name__)

#: Lookups of one message asked at once (each worker process; 1 = one after the other).
#: bench/pipeline.py, 40 jobs per message: 8 threads took the 50 ms passes from ~49 to ~72
#: tracks/s, but the 10k pass at 0 ms from 105 to 96 tracks/s and worker PSS from 289 to 301 MB
#: (target 300). Real providers' rate limits bind long before more threads would help.
LOOKUP_THREADS = int(os.environ.get("SONGNODES_LOOKUP_THREADS", "4"))
#: A lookup being asked is leased for this long, renewed every third of it while the task
#: runs: a duplicate message skips it meanwhile, a redelivery of the same message (same task
#: id) takes the lease over, and if the worker dies the lease runs out within this time and the
#: sweeper sends the lookup again (an expired lease is the sign of lost work).
LEASE_S = float(os.environ.get("SONGNODES_LOOKUP_LEASE_S", "30"))

_lock = threading.Lock()
# Lookup thread pools of this process by size, kept across messages (a pool per message started
# and joined its threads every time). Keyed by pid too: a pool is never used across a fork.
_pools: dict[tuple[int, int], ThreadPoolExecutor] = {}


def lookup_pool(threads: int) -> ThreadPoolExecutor:
    """This process's pool of ``threads`` lookup threads (created on first use)."""
    key = (os.getpid(), threads)
    with _lock:
        pool = _pools.get(key)
        if pool is None:
            pool = _pools[key] = ThreadPoolExecutor(threads, f"lookup-{threads}")
        return pool


def retry_countdown(exc: ProviderError, retries: int) -> float:
    """Seconds before retrying after ``exc`` (``retries`` done so far)."""
    wait = getattr(exc, "retry_after", None)
    if wait:
        return float(wait) + random.uniform(0, 0.25)
    return min(300.0, 2.0**retries) * random.uniform(0.5, 1.5)


def is_back_pressure(exc: BaseException) -> bool:
    """Our own shared rate limiter refused (no request was sent): the lookup waits its turn
    and is retried whatever its retry budget (a refusal spends none of it, see
    :func:`retry_budget`); under a tight provider limit, refusals are the normal state."""
    return isinstance(exc, RateLimited) and exc.local


def retry_budget(retries: int, waited: int, max_retries: int) -> tuple[int, bool]:
    """(this delivery's attempt number, whether a failure may still be retried) after
    ``retries`` retries, ``waited`` of which were only back pressure (:func:`is_back_pressure`).

    Counting refusals as attempts made a lookup give up ("gave up after 5 attempts:
    RateLimited") after four turns of waiting for a provider limit shared by many processes:
    a value lost to our own limiter, with no request ever sent."""
    attempts = retries - waited + 1
    return attempts, attempts <= max_retries


@dataclass
class LookupBatch:
    """What asking a provider about a message's jobs gave: outcomes to record, and the jobs to
    retry later (with the first error that asked for it)."""

    outcomes: list[LookupOutcome] = field(default_factory=list)
    retry_ids: list[str] = field(default_factory=list)
    retry_error: ProviderError | None = None
    replayed: int = 0  # requests answered from the reply journal (not asked again)


def run_lookups(
    call: Ask,
    inputs: Sequence[LookupInput],
    *,
    attempts: int,
    can_retry: bool,
    threads: int = LOOKUP_THREADS,
    on_answer: Callable[[LookupOutcome], object] | None = None,
) -> LookupBatch:
    """Ask for every input, up to ``threads`` at once; outcomes come back in input order.

    A lookup is I/O: a message's lookups waiting one after the other left the worker process
    idle most of the time (a py-spy profile of a bench worker: ~80% waiting on sockets). The
    global rate limit and the breaker still see every request. Once one lookup is rate limited
    (and the task may retry), no further lookup starts; those not started and the limited one
    are retried together, those that finished are recorded. A lookup that fails transiently
    (a 500 twice over, a timeout) is retried, but the others go on: one request's failure says
    nothing about the next, and a provider that is down opens its breaker, which refuses the
    rest. (Stopping every lookup of a message at the first 500 left ~all of them to the retry
    countdowns when 30% of requests failed: the chaos runs of issue 20.)
    ``on_answer`` sees each outcome in the thread that got it, as soon as it is known (the
    answer journal).
    """
    stop = threading.Event()

    def one(li: LookupInput) -> LookupOutcome | ProviderError | None:
        answer = asked(li)
        if on_answer is not None and isinstance(answer, LookupOutcome):
            on_answer(answer)
        return answer

    def asked(li: LookupInput) -> LookupOutcome | ProviderError | None:
        if stop.is_set():
            return None  # not started: retried with the failed one
        started = time.monotonic()
        try:
            result = call(li)
        except (RateLimited, TransientError) as exc:
            if can_retry or is_back_pressure(exc):
                if isinstance(exc, RateLimited):
                    stop.set()  # the provider asked us to slow down: start nothing more
                return exc  # retried with the others left; a 500 stops nothing else
            return LookupOutcome(
                li,
                error=f"gave up after {attempts} attempts: {type(exc).__name__}: {exc}",
                responses=exc.responses,
            )
        except CircuitOpen as exc:
            return LookupOutcome(li, error=f"skipped: circuit open ({exc})", status="skipped")
        except ProviderError as exc:  # auth, malformed response, unexpected 4xx: not retryable
            return LookupOutcome(li, error=f"{type(exc).__name__}: {exc}", responses=exc.responses)
        except Exception as exc:  # a bug in one provider must not stall the record
            log.exception("provider %s crashed on job %s", li.provider, li.job_id)
            return LookupOutcome(li, error=f"internal error: {type(exc).__name__}: {exc}")
        return LookupOutcome(li, result=result, latency_ms=int((time.monotonic() - started) * 1000))

    if threads <= 1 or len(inputs) <= 1:
        answers = [one(li) for li in inputs]
    else:
        answers = list(lookup_pool(threads).map(one, inputs))
    batch = LookupBatch()
    for li, answer in zip(inputs, answers, strict=True):
        if isinstance(answer, LookupOutcome):
            batch.outcomes.append(answer)
            continue
        batch.retry_ids.append(li.job_id)
        if batch.retry_error is None and answer is not None:
            batch.retry_error = answer
    return batch


def outcome_of(call: Callable[[], LookupResult], li: LookupInput) -> LookupOutcome:
    """One lookup asked once (replay: no retry), as an outcome to record; provider errors and
    crashes become failures."""
    started = time.monotonic()
    try:
        result = call()
    except ProviderError as exc:
        return LookupOutcome(li, error=f"{type(exc).__name__}: {exc}", responses=exc.responses)
    except Exception as exc:  # one provider's bug must not stall the replay
        return LookupOutcome(li, error=f"internal error: {type(exc).__name__}: {exc}")
    return LookupOutcome(li, result=result, latency_ms=int((time.monotonic() - started) * 1000))


#: Replay's lookup: ``(session, input) -> LookupResult``; the session is ``None`` for an HTTP
#: provider (no transaction may be open during its call), a short one for a scraper read.
LookupFn = Callable[[Session | None, LookupInput], LookupResult]


def _ask_in(session: Session | None, li: LookupInput) -> LookupResult:
    return ask(li, session)


def ask_each(
    sessions: Callable[[], AbstractContextManager[Session]],
    inputs: Sequence[LookupInput],
    lookup: LookupFn | None = None,
    *,
    holder: str = "replay",
) -> list[LookupOutcome]:
    """Replay's live round: each input answered once (no retry), one after the other, with no
    transaction open while a provider is asked; an answer already journaled is used as it is
    and every new one is journaled as it arrives. ``lookup``: the answerer (default
    :func:`~pipeline.lookups.clients.ask`)."""
    call = lookup or _ask_in
    with sessions() as session:
        known = journal.journaled(session, inputs)
    outcomes = []
    for li in inputs:
        outcome = known.get((li.job_id, li.provider))
        if outcome is None:
            if journal.is_database_read(li):
                with sessions() as session:
                    outcome = outcome_of(partial(call, session, li), li)
            else:
                outcome = outcome_of(partial(call, None, li), li)
            _journal(holder)(outcome)
        outcomes.append(outcome)
    return outcomes


@dataclass
class Leased:
    """A message's lookups leased to its holder: those to ask, and those whose answer is
    already journaled (recorded without asking)."""

    holder: str
    inputs: list[LookupInput]
    known: list[LookupOutcome]
    #: (job id, request key) -> a reply the lookups to ask already had (``replies``, 021).
    replies: dict[tuple[str, str], CannedReply] = field(default_factory=dict)


def lease(job_ids: Sequence[str], provider: str, holder: str) -> Leased:
    """Lease ``provider``'s pending lookups of ``job_ids`` to ``holder`` (a Celery task id) and
    read their inputs and journaled answers, in one short transaction."""
    journal_writes.flush()  # answers journaled while PostgreSQL was away, before reading
    with session_scope() as session:
        # A job whose lookup is already answered (a redelivered message) yields None; one that
        # another message is asking right now is not leased to this one.
        leased = lease_lookups(session, list(job_ids), provider, holder, LEASE_S)
        inputs = lookup_inputs(session, [j for j in job_ids if j in leased], provider)
        known = journal.journaled(session, inputs)
        to_ask = [li for li in inputs if (li.job_id, li.provider) not in known]
        kept = replies.load(
            session, provider, [li.job_id for li in to_ask if not journal.is_database_read(li)]
        )
    return Leased(holder, to_ask, list(known.values()), kept)


def release(job_ids: list[str], provider: str, holder: str, seconds: float) -> None:
    """Keep ``holder``'s leases ``seconds`` more (through a retry's countdown)."""
    with session_scope() as session:
        release_lookups(session, job_ids, provider, holder, seconds)


class LeaseHeartbeat:
    """Renews ``holder``'s leases every ``LEASE_S / 3`` from a thread while the lookups run.

    A thread, not a Celery timer: the task blocks in provider calls. A renewal that fails (the
    database is away) is skipped; the worst case is a lease running out and a duplicate ask
    (whose answer the journal may already hold).
    """

    def __init__(self, job_ids: list[str], provider: str, holder: str) -> None:
        self.args = (job_ids, provider, holder)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-heartbeat", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(LEASE_S / 3):
            try:
                with session_scope() as session:
                    renew_leases(session, *self.args, LEASE_S)
            except Exception:
                log.warning("lease renewal failed", exc_info=True)

    def __enter__(self) -> LeaseHeartbeat:
        if self.args[0]:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)


def _journal(holder: str) -> Callable[[LookupOutcome], object]:
    def write(outcome: LookupOutcome) -> object:
        return journal.worth_journaling(outcome) and journal.journal_answer(outcome, holder)

    return write


def _batched(client: Client, inputs: Sequence[LookupInput]) -> AbstractContextManager[object]:
    """The provider's batch requests for the live lookups of a message (``HttpProvider.batched``,
    which also decides whether there is anything to batch; stored replay and scraper providers
    have none)."""
    live = [li for li in inputs if li.replay_mode != "stored"]
    if not isinstance(client, HttpProvider):
        return nullcontext()
    return client.batched([li.query for li in live], sorted({f for li in live for f in li.fields}))


def ask_leased(
    client: Client,
    leased: Leased,
    *,
    attempts: int,
    can_retry: bool,
    call: Ask | None = None,
) -> LookupBatch:
    """Ask ``client`` about the leased lookups (leases renewed meanwhile, batch requests
    opened, answers and request replies journaled as they arrive, requests an earlier delivery
    had answered not asked again); the journaled ones join the outcomes unasked.
    ``call``: the answerer (default :func:`~pipeline.lookups.clients.ask`)."""
    inputs = leased.inputs
    provider = inputs[0].provider if inputs else ""
    heartbeat = LeaseHeartbeat([li.job_id for li in inputs], provider, leased.holder)
    # Requests already answered for these lookups (an earlier delivery) are answered from the
    # reply journal; new answers are kept there as they come (pipeline.lookups.replies).
    kept = replies.MessageReplies(provider, inputs[0].job_id if inputs else None, leased.replies)
    try:
        with heartbeat, kept.active(), _batched(client, inputs):
            batch = run_lookups(
                kept.asking(call or ask),
                inputs,
                attempts=attempts,
                can_retry=can_retry,
                on_answer=_journal(leased.holder),
            )
    except RateLimited as exc:
        # The batch request was refused by a rate limit before any lookup was asked: they
        # wait their turn together, decided as any lookup refused that way is (run_lookups).
        refused = exc

        def refuse(li: LookupInput) -> LookupResult:
            raise refused

        batch = run_lookups(refuse, inputs, attempts=attempts, can_retry=can_retry, threads=1)
    batch.outcomes[:0] = leased.known
    batch.replayed = kept.served
    return batch


def record_batch(outcomes: list[LookupOutcome], attempts: int) -> Next:
    """Record a batch in ONE transaction with a handful of statements (``record_outcomes``).

    If the batch write fails (a row PostgreSQL refuses), it is rolled back to a savepoint and
    the jobs are recorded one by one, each in its own savepoint, so one bad row cannot lose the
    others; a job whose own write fails is recorded as failed, so the record still moves on.
    """
    with session_scope() as session:
        try:
            with session.begin_nested():
                return record_outcomes(session, outcomes, attempts)
        except (OperationalError, InterfaceError):
            raise  # the database is away, not a bad row: the caller retries the whole batch
        except Exception:
            log.exception("batch record of %d lookups failed; recording one by one", len(outcomes))
        nxt = Next()
        for o in outcomes:
            try:
                with session.begin_nested():
                    nxt.extend(record_outcomes(session, [o], attempts))
            except (OperationalError, InterfaceError):
                raise
            except Exception as exc:
                log.exception("recording %s for job %s failed", o.li.provider, o.li.job_id)
                with session.begin_nested():
                    failed = LookupOutcome(
                        o.li, error=f"internal error while recording: {type(exc).__name__}: {exc}"
                    )
                    nxt.extend(record_outcomes(session, [failed], attempts))
        return nxt
