"""How an ``HttpProvider``'s requests are answered: small exchange objects.

As httpx separates its transports from the client, ``HttpProvider`` builds a :class:`Request`
and hands it to the exchange it was given at construction; the exchange answers with a
:class:`Reply` (status, headers, decoded body and the redacted ``RawResponse`` it recorded for
bronze). What a reply *means* (429 -> ``RateLimited``, 404 -> ``NotFound``, ...) stays with the
provider (``check_reply``), and so do retries and the breaker: an exchange only answers.

::

    Exchange                 handle(Request) -> Reply; raises providers.errors for no reply
     ├── LiveExchange        the network: global rate limit, then httpx (5 MB streamed cap)
     ├── CannedExchange      an Answerer (stored replay, what-if): no network, no limiter; a
     │                       request the answerer refuses raises NotAnswered
     └── HeldExchange        parts of batch requests held for the lookups of the batch
                             (``HttpProvider.batched``); any other request goes on to the
                             exchange it wraps (a LiveExchange)

Every reply, whichever exchange gave it, is appended to the lookup's collected responses
(:func:`collect`), so the raw responses land in the lookup's result or error.

In front of the network a lookup task may also hold a :class:`ReplyJournal` (the context
variable :func:`reply_journal`; ``pipeline.lookups.replies``): ``HttpProvider`` asks it before
going live and gives it every live reply it judged an answer, so a lookup retried or redelivered
part way is not asked its answered requests again.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from providers._http import decode_body, read_bounded, redact
from providers.contract import RawResponse
from providers.errors import MalformedResponse, TransientError
from providers.ratelimit import RateLimiter

__all__ = [
    "Answerer",
    "BatchPart",
    "BatchRequest",
    "CannedExchange",
    "CannedReply",
    "Exchange",
    "HeldExchange",
    "LiveExchange",
    "Reply",
    "ReplyJournal",
    "Request",
    "RequestKey",
    "canned_reply",
    "collect",
    "collected",
    "reply_journal",
    "request_key",
]

logger = logging.getLogger("songnodes.providers")


@dataclass(frozen=True, slots=True)
class Reply:
    """A decoded HTTP reply (JSON body) handed to the provider's parsing code."""

    status_code: int
    headers: httpx.Headers
    body: Any
    is_json: bool
    raw: RawResponse
    live: bool = True  # from the network (not a held part, a stored or journaled reply)


@dataclass(frozen=True, slots=True)
class CannedReply:
    """A reply answered without the network (stored replay): the status and the body already
    decoded (JSON, or ``{"_text": ...}`` for a body that was not JSON)."""

    status_code: int
    body: Any
    is_json: bool = True


# (method, absolute URL, query params) -> the reply; raises a ProviderError (e.g. a stored
# timeout) instead of answering.
Answerer = Callable[[str, str, Mapping[str, Any] | None], CannedReply]

# (method, absolute URL, params as sorted string pairs): how a held batch part is found.
RequestKey = tuple[str, str, tuple[tuple[str, str], ...]]


def request_key(method: str, url: str, params: Mapping[str, Any] | None) -> RequestKey:
    return method, url, tuple(sorted((str(k), str(v)) for k, v in (params or {}).items()))


@dataclass(frozen=True, slots=True)
class Request:
    """One request as the provider means it (absolute URL), and whose it is."""

    provider: str
    api_version: str | None
    method: str
    url: str
    params: Mapping[str, Any] | None = None
    headers: Mapping[str, str] | None = None
    data: Mapping[str, str] | None = None
    auth: tuple[str, str] | None = None
    limited: bool = True  # acquire the global rate limit first (not for token endpoints)


class Exchange(Protocol):
    def handle(self, request: Request) -> Reply: ...


class ReplyJournal(Protocol):
    """Replies to requests a lookup already had answered (``pipeline.lookups.replies``)."""

    def find(self, request: Request) -> CannedReply | None:
        """The answer kept for ``request`` (this lookup's), or ``None``: ask the network."""
        ...

    def keep(self, request: Request, reply: Reply) -> None:
        """Keep ``reply``, a live reply the provider judged an answer (200 or 404)."""
        ...


_reply_journal: contextvars.ContextVar[ReplyJournal | None] = contextvars.ContextVar(
    "songnodes_reply_journal", default=None
)


def reply_journal() -> contextvars.ContextVar[ReplyJournal | None]:
    """The context variable holding the current lookup task's reply journal (if any)."""
    return _reply_journal


_collected: contextvars.ContextVar[list[RawResponse] | None] = contextvars.ContextVar(
    "songnodes_provider_responses", default=None
)


def collected() -> contextvars.ContextVar[list[RawResponse] | None]:
    """The context variable holding the current lookup's responses (``HttpProvider.lookup``)."""
    return _collected


def collect(raw: RawResponse) -> RawResponse:
    """Append ``raw`` to the current lookup's responses (if a lookup is collecting)."""
    found = _collected.get()
    if found is not None:
        found.append(raw)
    return raw


def canned_reply(request: Request, canned: CannedReply, elapsed_ms: float, calls: int) -> Reply:
    """A reply given without the network. The body is recorded as given (a stored body was
    redacted when it was first stored; a held part is redacted when it is held)."""
    raw = RawResponse(
        endpoint=f"{request.method} {request.url}",
        params=redact(dict(request.params or {})),
        status_code=canned.status_code,
        body=canned.body,
        elapsed_ms=elapsed_ms,
        api_version=request.api_version,
        calls=calls,
    )
    collect(raw)
    return Reply(canned.status_code, httpx.Headers(), canned.body, canned.is_json, raw, live=False)


@dataclass(frozen=True, slots=True)
class CannedExchange:
    """Every request answered by ``answerer`` (stored replay, what-if): no network, no limiter
    (a request/response round trip through httpx just to hand the parser a body we already
    hold cost about half of a replayed lookup)."""

    answerer: Answerer

    def handle(self, request: Request) -> Reply:
        started = time.perf_counter()
        canned = self.answerer(request.method, request.url, request.params)
        elapsed_ms = round((time.perf_counter() - started) * 1000, 2)
        return canned_reply(request, canned, elapsed_ms, calls=1)


class LiveExchange:
    """The network: the global rate limit (unless ``request.limited`` is false), then httpx,
    the body read with a size cap; every exchange (a timeout too) recorded redacted."""

    def __init__(self, http: httpx.Client, limiter: RateLimiter, user_agent: str) -> None:
        self.http = http
        self.limiter = limiter
        self.user_agent = user_agent

    def handle(self, request: Request) -> Reply:
        if request.limited:
            self.limiter.acquire()
        headers = {"User-Agent": self.user_agent, **(request.headers or {})}
        started = time.perf_counter()
        status: int | None = None
        try:
            with self.http.stream(
                request.method, request.url, params=request.params, headers=headers,
                data=request.data, auth=request.auth,
            ) as response:  # fmt: skip
                status = response.status_code
                resp_headers = response.headers
                try:
                    content = read_bounded(response)
                except MalformedResponse as exc:
                    self._store(request, status, {"_text": str(exc)}, started)
                    exc.provider = request.provider
                    raise
        except httpx.TimeoutException as exc:
            self._store(request, None, {"_error": "timeout"}, started)
            raise TransientError(f"timeout: {exc}", provider=request.provider) from exc
        except httpx.HTTPError as exc:
            self._store(request, None, {"_error": type(exc).__name__}, started)
            raise TransientError(
                f"{type(exc).__name__}: {exc}", provider=request.provider
            ) from exc
        body, is_json = decode_body(content)
        raw = self._store(request, status, body, started)
        return Reply(status, resp_headers, body, is_json, raw)

    @staticmethod
    def _store(request: Request, status: int | None, body: Any, started: float) -> RawResponse:
        elapsed_ms = round((time.perf_counter() - started) * 1000, 2)
        raw = RawResponse(
            endpoint=f"{request.method} {request.url}",
            params=redact(dict(request.params or {})),
            status_code=status,
            body=redact(body),
            elapsed_ms=elapsed_ms,
            api_version=request.api_version,
        )
        collect(raw)
        logger.info(
            "provider_request",
            extra={
                "provider": request.provider,
                "endpoint": raw.endpoint,
                "params": raw.params,
                "status": status,
                "elapsed_ms": elapsed_ms,
            },
        )
        return raw


@dataclass(slots=True)
class BatchRequest:
    """One batch request whose parts are held; the first part used counts it (``calls``)."""

    elapsed_ms: float
    counted: bool = False


@dataclass(frozen=True, slots=True)
class BatchPart:
    """One id's part of a batch request's answer, held for the request that id's own lookup
    makes (``request``: the one-id form of the batch endpoint)."""

    method: str
    url: str
    params: Mapping[str, Any]
    reply: CannedReply
    request: BatchRequest = field(compare=False)


class HeldExchange:
    """Held parts of batch requests answer their lookups' one-id requests; every other request
    goes on to ``inner`` (see ``HttpProvider.batched``)."""

    def __init__(self, inner: Exchange) -> None:
        self.inner = inner
        self.held: dict[RequestKey, BatchPart] = {}
        self._lock = threading.Lock()

    def hold(self, parts: Sequence[BatchPart]) -> list[tuple[RequestKey, BatchPart]]:
        keys = [(request_key(p.method, p.url, p.params), p) for p in parts]
        with self._lock:
            self.held.update(keys)
        return keys

    def release(self, keys: Sequence[tuple[RequestKey, BatchPart]]) -> None:
        with self._lock:
            for key, part in keys:
                if self.held.get(key) is part:
                    del self.held[key]

    def handle(self, request: Request) -> Reply:
        if self.held:  # lock-free when nothing is held (nearly every request)
            with self._lock:
                part = self.held.pop(request_key(request.method, request.url, request.params), None)
                if part is not None:
                    calls = 0 if part.request.counted else 1
                    part.request.counted = True
            if part is not None:
                held = Request(
                    request.provider, request.api_version, part.method, part.url, part.params
                )
                return canned_reply(held, part.reply, part.request.elapsed_ms, calls)
        return self.inner.handle(request)
