"""HttpProvider's ways of answering are exchange objects given at construction.

A provider hands each request to its exchange (``providers.exchange``); retries, the breaker
and error mapping (``check_reply``) stay with the provider whichever exchange answered. The
Deezer track body is the shape ``test_wire_errors`` uses (Deezer's ``/track/isrc:`` answer,
providers.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import pytest

from providers.base import HttpProvider, RetryPolicy
from providers.breaker import BreakerConfig, CircuitBreaker, MemoryBreakerStore, NoBreaker
from providers.errors import RateLimited, TransientError
from providers.exchange import (
    BatchPart,
    BatchRequest,
    CannedExchange,
    CannedReply,
    HeldExchange,
    LiveExchange,
    Reply,
    Request,
    collected,
)
from providers.ratelimit import RateLimitConfig, RateLimiter
from providers.registry import _entry_points

from .conftest import settings_from_env
from .test_wire_errors import DEEZER_TRACK, ENV, Q

ISRC_URL = "http://fake.test/deezer/track/isrc:GBDUW0000059"


def _refuse(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"the network was used: {request.url}")


def _deezer(**options: Any) -> HttpProvider:
    cls = _entry_points()["deezer"].load()
    breaker = CircuitBreaker("deezer", BreakerConfig(), store=MemoryBreakerStore())
    options.setdefault("breaker", breaker)
    options.setdefault("limiter", RateLimiter("deezer", RateLimitConfig()))
    options.setdefault("http_client", httpx.Client(transport=httpx.MockTransport(_refuse)))
    provider: HttpProvider = cls(settings_from_env("deezer", ENV), **options)
    return provider


class _Table:
    """An exchange answering from a table of (method, url) -> (status, body)."""

    def __init__(self, answers: Mapping[tuple[str, str], tuple[int, Any]]) -> None:
        self.answers = dict(answers)
        self.default: tuple[int, Any] | None = None  # the answer to any request not listed
        self.seen: list[Request] = []

    def handle(self, request: Request) -> Reply:
        self.seen.append(request)
        found = self.answers.get((request.method, request.url), self.default)
        assert found is not None, f"unexpected request {request.method} {request.url}"
        status, body = found
        return CannedExchange(lambda m, u, p: CannedReply(status, body)).handle(request)


def test_a_given_exchange_answers_every_request_and_the_provider_still_judges() -> None:
    """The provider's own parsing reads what the exchange answered, no network; a 500 from
    the exchange is the provider's ``TransientError`` and a 429 its ``RateLimited``, as from the
    network; the exchange sees the provider's name, absolute URL and default headers."""
    table = _Table({("GET", ISRC_URL): (200, DEEZER_TRACK)})
    provider = _deezer(exchange=table)
    result = provider.lookup(Q, ["bpm"])
    assert result.values["bpm"].value == 123.0
    assert [r.endpoint for r in result.responses] == [f"GET {ISRC_URL}"]
    [seen] = table.seen
    assert (seen.provider, seen.url) == ("deezer", ISRC_URL)
    assert seen.headers and seen.headers["Accept"] == "application/json"
    assert provider.answerer is None  # not a canned exchange

    for status, error in ((500, TransientError), (429, RateLimited)):
        table.answers.clear()
        table.default = (status, {})
        with pytest.raises(error):
            _deezer(exchange=table, retry=RetryPolicy(attempts=1)).lookup(Q, ["bpm"])


def test_answerer_breaker_and_retry_are_given_at_construction_not_patched() -> None:
    """``answerer=`` is a ``CannedExchange``; a ``NoBreaker`` records nothing and never
    opens; the answerer cannot be swapped afterwards (replay used to patch it, and the
    breaker, onto a built client)."""
    calls: list[str] = []

    def answer(method: str, url: str, params: Mapping[str, Any] | None) -> CannedReply:
        calls.append(url)
        return CannedReply(200, DEEZER_TRACK)

    provider = _deezer(answerer=answer, breaker=NoBreaker(), retry=RetryPolicy(attempts=1))
    assert isinstance(provider.exchange, CannedExchange) and provider.answerer is answer
    assert provider.lookup(Q, ["bpm"]).values["bpm"].value == 123.0
    assert calls == [ISRC_URL]
    with pytest.raises(AttributeError):
        provider.answerer = answer  # type: ignore[misc]


def test_stored_replay_and_whatif_clients_are_built_with_their_answerer() -> None:
    """The stored clients replay and what-if use come from the constructor: a canned
    exchange with their own answerer, ``NoBreaker``, one attempt."""
    from pipeline.stored_answers import offline_provider, stored_answer, stored_provider
    from pipeline.whatif.stored import _strict_answer

    replay = stored_provider("deezer")
    whatif = offline_provider("deezer", _strict_answer, "stored.whatif", "whatif")
    for client, answerer in ((replay, stored_answer), (whatif, _strict_answer)):
        assert isinstance(client.exchange, CannedExchange) and client.answerer is answerer
        assert isinstance(client.breaker, NoBreaker)
        assert client.retry == RetryPolicy(attempts=1)
    assert replay is not whatif and stored_provider("deezer") is replay


def test_held_parts_answer_their_request_once_and_the_rest_goes_on() -> None:
    """A held part answers its one-id request (the batch request counted once over all its
    parts), and is then gone; any other request goes to the wrapped exchange."""
    inner = _Table({("GET", "http://x.test/other"): (200, {"ok": True})})
    held = HeldExchange(inner)
    batch = BatchRequest(elapsed_ms=5.0)
    parts = [
        BatchPart("GET", "http://x.test/one", {"id": str(i)}, CannedReply(200, {"i": i}), batch)
        for i in range(2)
    ]
    keys = held.hold(parts)
    responses: list[Any] = []
    token = collected().set(responses)
    try:
        first = held.handle(Request("p", None, "GET", "http://x.test/one", {"id": "0"}))
        second = held.handle(Request("p", None, "GET", "http://x.test/one", {"id": "1"}))
        other = held.handle(Request("p", None, "GET", "http://x.test/other"))
    finally:
        collected().reset(token)
    assert (first.body, second.body, other.body) == ({"i": 0}, {"i": 1}, {"ok": True})
    assert [first.raw.calls, second.raw.calls] == [1, 0]
    assert [r.endpoint for r in responses] == ["GET http://x.test/one"] * 2 + [
        "GET http://x.test/other"
    ]
    assert held.held == {} and len(inner.seen) == 1
    held.release(keys)  # releasing what was already used is harmless
    assert held.held == {}


def test_live_exchange_acquires_the_limit_and_records_the_exchange() -> None:
    """The network exchange takes the rate limit for a limited request (not for a token
    request), sends our User-Agent and the provider's headers, and records the reply."""
    sent: list[httpx.Request] = []

    def transport(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"ok": True})

    acquired: list[int] = []

    class Limiter(RateLimiter):
        def acquire(self, *args: Any, **kwargs: Any) -> Any:
            acquired.append(1)

    live = LiveExchange(
        httpx.Client(transport=httpx.MockTransport(transport)),
        Limiter("p", RateLimitConfig()),
        "SongNodes/test",
    )
    reply = live.handle(Request("p", "v1", "GET", "http://x.test/a", {"q": "1"}, {"Accept": "x"}))
    live.handle(Request("p", "v1", "POST", "http://x.test/token", limited=False))
    assert reply.body == {"ok": True} and reply.raw.api_version == "v1"
    assert reply.raw.endpoint == "GET http://x.test/a" and reply.raw.params == {"q": "1"}
    assert sent[0].headers["User-Agent"] == "SongNodes/test" and sent[0].headers["Accept"] == "x"
    assert acquired == [1]
