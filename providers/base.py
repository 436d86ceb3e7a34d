"""``HttpProvider``: the base every HTTP provider builds on.

It owns the httpx client (timeouts, User-Agent, 5 MB streamed body cap), acquires the global rate
limit before every request, retries retryable errors inside a small budget (tenacity: exponential
backoff with jitter, ``Retry-After`` honoured; longer waits surface as ``RateLimited`` so Celery
retries with a countdown), maps HTTP outcomes to ``providers.errors``, records every exchange as a
redacted ``RawResponse``, and wraps each logical lookup in the provider's circuit breaker.

How a request is answered is the provider's *exchange* (``providers.exchange``), given at
construction like its breaker and retry policy: by default held batch parts in front of the
network (``HeldExchange(LiveExchange(...))``), or a ``CannedExchange`` over an answerer (stored
replay, what-if). The provider builds the request and judges the reply whichever answered.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import logging
import ssl
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx
import tenacity

from providers._http import parse_retry_after, redact, register_secret
from providers.breaker import (
    BreakerConfig,
    BreakerState,
    CircuitBreaker,
    NoBreaker,
    TransitionCallback,
)
from providers.contract import LookupResult, Provider, RawResponse, TrackQuery
from providers.errors import (
    AuthError,
    CapabilityUnavailable,
    MalformedResponse,
    NotAnswered,
    NotFound,
    ProviderError,
    RateLimited,
    RequestRejected,
    TransientError,
)
from providers.exchange import (
    Answerer,
    BatchPart,
    BatchRequest,
    CannedExchange,
    CannedReply,
    Exchange,
    HeldExchange,
    LiveExchange,
    Reply,
    Request,
    canned_reply,
    collected,
    reply_journal,
)
from providers.ratelimit import RateLimitConfig, RateLimiter
from providers.settings import ProviderSettings, settings_for

__all__ = [
    "USER_AGENT",
    "Answerer",
    "BatchPart",
    "CannedReply",
    "ClientCredentials",
    "Exchange",
    "HttpProvider",
    "Reply",
    "RetryPolicy",
    "shared_ssl_context",
]

logger = logging.getLogger("songnodes.providers")


def _version() -> str:
    try:
        return importlib.metadata.version("songnodes")
    except importlib.metadata.PackageNotFoundError:
        return "0"


USER_AGENT = f"SongNodes/{_version()} ( ops@songnodes.invalid )"

# The raw responses of the lookup running in this thread/context (every exchange appends).
_collected = collected()


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """In-call retries: short, so a worker slot is not held; the task retries the rest."""

    attempts: int = 2
    max_total_wait_s: float = 2.0
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 1.0
    jitter_s: float = 0.2


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, RateLimited):
        return not exc.local  # our limiter already waited as long as it may
    return isinstance(exc, TransientError)


def _failure_for_breaker(exc: ProviderError) -> bool:
    # What is worth retrying says the provider is struggling; so does a reply we cannot read.
    return _retryable(exc) or isinstance(exc, MalformedResponse)


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """One TLS context (system-default verification, CA bundle loaded once) for every provider
    client of the process. httpx builds a new one per client otherwise: ~2 MB and tens of ms
    each, nine times per worker process (seen in py-spy profiles and worker RSS). Built in
    the worker's parent before the pool forks (tasks.app), it is shared copy-on-write."""
    return httpx.create_ssl_context()


class HttpProvider(Provider):
    """Base class for providers spoken to over HTTP."""

    settings_class: ClassVar[type[ProviderSettings]] = ProviderSettings
    api_version: ClassVar[str | None] = None
    # Default wait when a throttle signal carries no Retry-After.
    default_retry_after_s: ClassVar[float] = 1.0
    # Sent with every request (e.g. TIDAL's JSON:API media type).
    default_headers: ClassVar[Mapping[str, str]] = {"Accept": "application/json"}

    def __init__(
        self,
        settings: ProviderSettings | None = None,
        *,
        rate_limit: RateLimitConfig | None = None,
        on_transition: TransitionCallback | None = None,
        http_client: httpx.Client | None = None,
        breaker: CircuitBreaker | NoBreaker | None = None,
        limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        answerer: Answerer | None = None,
        exchange: Exchange | None = None,
    ) -> None:
        """Everything that decides how a request is answered is given here, never patched on
        later: ``exchange`` (default: held batch parts, then the network; ``answerer`` is
        short for ``CannedExchange(answerer)``, as stored replay and what-if use), ``breaker``
        (``NoBreaker()`` for answers that are not the provider's health), ``retry``."""
        self.settings = settings or settings_for(self.name)
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._owns_client = http_client is None
        self.http = http_client or httpx.Client(
            timeout=httpx.Timeout(self.settings.timeout),
            headers={"User-Agent": USER_AGENT},
            follow_redirects=True,
            verify=shared_ssl_context(),
        )
        self.limiter = limiter or RateLimiter(self.name, self._rate_limit(rate_limit), sleep=sleep)
        self.breaker = breaker or CircuitBreaker(
            self.name, BreakerConfig(), on_transition=on_transition
        )
        if exchange is None and answerer is not None:
            exchange = CannedExchange(answerer)
        # Parts of batch requests are held in front of the network (see ``batched``); a given
        # exchange (stored answers) has no batch requests to hold.
        self._holder: HeldExchange | None = None
        if exchange is None:
            self._holder = HeldExchange(LiveExchange(self.http, self.limiter, USER_AGENT))
            exchange = self._holder
        self.exchange: Exchange = exchange

    @property
    def answerer(self) -> Answerer | None:
        """The answerer of a canned exchange (stored replay, what-if), else ``None``."""
        return self.exchange.answerer if isinstance(self.exchange, CannedExchange) else None

    @property
    def _held(self) -> dict[Any, BatchPart]:
        """Batch parts held right now (empty outside ``batched``)."""
        return self._holder.held if self._holder is not None else {}

    def _rate_limit(self, given: RateLimitConfig | None) -> RateLimitConfig:
        # Precedence: env override > value from enrichment_providers (caller) > our default.
        s = self.settings
        explicit = s.model_fields_set
        if given is None:
            return RateLimitConfig(s.rate_limit_per_second, s.rate_limit_per_day)
        return RateLimitConfig(
            s.rate_limit_per_second if "rate_limit_per_second" in explicit else given.per_second,
            s.rate_limit_per_day if "rate_limit_per_day" in explicit else given.per_day,
        )

    def close(self) -> None:
        if self._owns_client:
            self.http.close()

    def __enter__(self) -> HttpProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- batch endpoints ---------------------------------------------------------------------
    def batch_parts(
        self, queries: Sequence[TrackQuery], fields: Collection[str]
    ) -> list[BatchPart]:
        """Ask the provider's batch endpoints once for many lookups; one part per id (default:
        the provider has none)."""
        return []

    def part(
        self, batch: BatchRequest, path: str, params: Mapping[str, Any], body: Any
    ) -> BatchPart:
        """The part of ``batch`` that the one-id request ``GET path?params`` is answered with."""
        return BatchPart("GET", self.url(path), dict(params), CannedReply(200, redact(body)), batch)

    def batch_request(self, path: str, params: Mapping[str, Any]) -> tuple[Reply, BatchRequest]:
        """Send a batch request (limited, retried like any request); its parts go to lookups."""
        started = time.perf_counter()
        reply = self.request("GET", path, params=params)
        return reply, BatchRequest(round((time.perf_counter() - started) * 1000, 2))

    @contextlib.contextmanager
    def batched(self, queries: Sequence[TrackQuery], fields: Collection[str]) -> Iterator[int]:
        """Within the block, lookups of ``queries`` are answered from batch requests made here.

        A provider with a batch endpoint (AcousticBrainz: 25 recordings per request, where the
        old API allowed 10 requests per 10 s) asks it once for a task's lookups; each lookup
        then makes its usual one-id request, answered with its part, and stores that part as
        its own exchange, so stored replay answers it the same way. Yields the number of parts
        held. A batch request that fails is logged and skipped: the lookups ask one by one, and
        their errors take the usual paths (retries, the breaker). One refused by a rate limit
        raises ``RateLimited`` instead, before any lookup is asked.
        """
        parts: list[BatchPart] = []
        holder = self._holder
        # Not while the breaker is open or probing: the lookups are refused or probe one by one.
        if (
            type(self).batch_parts is not HttpProvider.batch_parts  # it has a batch endpoint
            and holder is not None
            and self.settings.base_url
            and len(queries) > 1
            and self.breaker.state is BreakerState.CLOSED
        ):
            try:
                parts = self.batch_parts(queries, fields)
            except RateLimited:
                # Refused by the limit (ours or the provider's 429): asking one by one would
                # spend a request per lookup where the one batch request was refused; the
                # lookups wait their turn together (``pipeline.lookups.engine.ask_leased``).
                raise
            except ProviderError as exc:
                logger.warning("%s batch request failed (%s); asking one by one", self.name, exc)
            except Exception:  # a bug in one provider's batch code must not fail the message
                logger.exception("%s batch request crashed; asking one by one", self.name)
        keys = holder.hold(parts) if holder is not None else []
        try:
            yield len(parts)
        finally:
            if holder is not None:
                holder.release(keys)

    # --- the logical lookup: breaker + response collection ---------------------------------------
    def lookup(self, query: TrackQuery, fields: Collection[str]) -> LookupResult:
        """Provider.lookup wrapped in the breaker; every raw response lands in the result/error."""
        if not self.settings.base_url:
            return LookupResult(
                self.name,
                "unavailable",
                unavailable=dict.fromkeys(fields, "provider not configured (no base URL)"),
            )
        self.breaker.before_call()
        responses: list[RawResponse] = []
        token = _collected.set(responses)
        try:
            result = super().lookup(query, fields)
        except ProviderError as exc:
            exc.provider = exc.provider or self.name
            exc.responses = list(responses)
            self._record(failed=_failure_for_breaker(exc))
            raise
        except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
            # Our parsing met a shape the API does not document: the provider's fault, typed.
            self._record(failed=True)
            raise MalformedResponse(
                f"unexpected payload shape: {type(exc).__name__}: {exc}",
                provider=self.name,
                responses=responses,
            ) from exc
        finally:
            _collected.reset(token)
        self._record(failed=False)
        result.responses = responses
        return result

    def _record(self, *, failed: bool) -> None:
        if failed:
            self.breaker.record_failure()
        else:
            self.breaker.record_success()

    # --- requests ---------------------------------------------------------------------------
    def url(self, path: str) -> str:
        """Absolute URL for ``path`` under the configured base URL (absolute URLs pass through)."""
        if path.startswith(("http://", "https://")):
            return path
        base = (self.settings.base_url or "").rstrip("/")
        return f"{base}/{path.lstrip('/')}" if path else f"{base}/"

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        limited: bool = True,
        optional: bool = False,
    ) -> Reply:
        """One logical request with the in-call retry budget; raises ``providers.errors``.

        ``optional``: a request the lookup can do without (e.g. audio features). When an answered
        (replayed) lookup has no answer for it because the original lookup skipped it, it is
        ``CapabilityUnavailable`` rather than a failed lookup.
        """
        send = functools.partial(
            self._send, method, path, params=params, headers=headers, data=data, auth=auth,
            limited=limited, optional=optional,
        )  # fmt: skip
        # Fast path: nearly every request succeeds at once, and going through tenacity (a new
        # Retrying, its call state and per-attempt actions) cost ~35 us per request, more than a
        # replayed request itself. A first failure is handed to tenacity as its attempt 1.
        started = time.monotonic()
        try:
            return send()
        except ProviderError as exc:
            if not _retryable(exc):
                raise
            first: ProviderError | None = exc
        for attempt in self._retrying():
            with attempt:
                if first is not None:
                    # Same budget as before: the clock started with the fast path's attempt.
                    attempt.retry_state.start_time = started
                    failed, first = first, None
                    raise failed
                return send()
        raise AssertionError("unreachable: tenacity returns or raises")

    def _retrying(self) -> tenacity.Retrying:
        """The in-call retry controller (only built once a request has failed)."""
        policy = self.retry
        backoff = tenacity.wait_exponential_jitter(
            multiplier=policy.backoff_initial_s, max=policy.backoff_max_s, jitter=policy.jitter_s
        )

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, RateLimited):
                return exc.retry_after
            return float(backoff(state))

        return tenacity.Retrying(
            stop=tenacity.stop_after_attempt(policy.attempts)
            | tenacity.stop_before_delay(policy.max_total_wait_s),
            wait=wait,
            retry=tenacity.retry_if_exception(_retryable),
            sleep=self._sleep,
            reraise=True,
        )

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        data: Mapping[str, str] | None,
        auth: tuple[str, str] | None,
        limited: bool,
        optional: bool = False,
    ) -> Reply:
        """One attempt: the exchange answers (``providers.exchange``), the provider judges.

        With a reply journal (a lookup task's, ``pipeline.lookups.replies``) a live GET is first
        looked up there, and a live reply judged an answer (200, or 404 ``NotFound``) is kept
        there: a lookup retried or redelivered part way does not ask its answered requests
        again. Stored and canned exchanges (replay, what-if) never see it.
        """
        request = Request(
            self.name, self.api_version, method, self.url(path), params,
            {**self.default_headers, **(headers or {})}, data, auth, limited,
        )  # fmt: skip
        journal = reply_journal().get()
        if journal is not None and (self._holder is None or method != "GET" or not limited):
            journal = None  # not a live provider's data request (token endpoint, stored answers)
        if journal is not None:
            kept = journal.find(request)
            if kept is not None:
                reply = canned_reply(request, kept, 0.0, calls=1)
                self.check_reply(reply)
                return reply
        try:
            reply = self.exchange.handle(request)
        except NotAnswered as exc:
            if optional:
                raise self.capability("not requested by the original lookup") from exc
            raise
        if journal is None or not reply.live:
            self.check_reply(reply)
            return reply
        try:
            self.check_reply(reply)
        except NotFound:
            journal.keep(request, reply)
            raise
        journal.keep(request, reply)
        return reply

    # --- error mapping ----------------------------------------------------------------------
    def check_reply(self, reply: Reply) -> None:
        """Raise the typed error for a reply; providers override to add body/header signals."""
        status = reply.status_code
        name = self.name
        if status == 429:
            retry_after = parse_retry_after(
                reply.headers.get("retry-after"), self.default_retry_after_s
            )
            raise RateLimited("HTTP 429", retry_after=retry_after, provider=name)
        if status >= 500:
            raise TransientError(f"HTTP {status}", provider=name)
        if status in (401, 403):
            raise AuthError(f"HTTP {status}", provider=name)
        if status == 404:
            raise NotFound("HTTP 404", provider=name)
        if status >= 400:
            raise RequestRejected(f"HTTP {status} (request rejected)", provider=name)
        if not reply.is_json:
            raise MalformedResponse(f"HTTP {status} body is not JSON", provider=name)

    def capability(self, reason: str) -> CapabilityUnavailable:
        return CapabilityUnavailable(reason, provider=self.name)


class ClientCredentials:
    """OAuth2 client-credentials token, cached until shortly before expiry, refreshed on 401."""

    # Refresh a little early so a token never expires between our check and the provider's.
    early_refresh_s = 60.0

    def __init__(self, provider: HttpProvider) -> None:
        self._provider = provider
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()

    def token(self) -> str:
        with self._lock:
            if self._token is None or time.time() >= self._expires_at:
                self._fetch()
            assert self._token is not None
            return self._token

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

    def _fetch(self) -> None:
        s = self._provider.settings
        if not (s.client_id and s.client_secret and s.token_url):
            raise AuthError(
                "client_id, client_secret and token_url are required",
                provider=self._provider.name,
            )
        reply = self._provider.request(
            "POST",
            s.token_url,
            data={"grant_type": "client_credentials"},
            auth=(s.client_id, s.client_secret.get_secret_value()),
            limited=False,  # the token endpoint is a different service with its own limits
        )
        body = reply.body
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise MalformedResponse("token reply has no access_token", provider=self._provider.name)
        expires_in = body.get("expires_in", 3600)
        if isinstance(expires_in, bool) or not isinstance(expires_in, int | float):
            expires_in = 3600
        register_secret(token)  # redacted from every log line and message from now on
        self._token = token
        self._expires_at = time.time() + max(0.0, float(expires_in) - self.early_refresh_s)

    def get(
        self, path: str, *, params: Mapping[str, Any] | None = None, optional: bool = False
    ) -> Reply:
        """GET with the bearer token; on 401 fetch a fresh token and try once more."""
        for attempt in (1, 2):
            headers = {"Authorization": f"Bearer {self.token()}"}
            try:
                return self._provider.request(
                    "GET", path, params=params, headers=headers, optional=optional
                )
            except AuthError as exc:
                if attempt == 2 or exc.message != "HTTP 401":
                    raise
                self.invalidate()
        raise AssertionError("unreachable")
