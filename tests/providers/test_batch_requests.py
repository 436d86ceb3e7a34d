"""Batch endpoints (``HttpProvider.batched``): a task's lookups share one request per batch, each
lookup stores its own part as its own one-id request, and everything else stays as it was.

AcousticBrainz is the provider with one (``/low-level?recording_ids=a;b``, 25 ids per request):
against the sandbox, and with respx for the failures (the old API's real shapes).
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import httpx
import pytest
import respx

from pipeline import stored_answers
from pipeline.enrich import LookupInput
from pipeline.lookups.engine import Leased, ask_leased, is_back_pressure
from pipeline.matching import TrackQuery
from pipeline.stored_answers import parse_stored, stored_exchange
from providers.base import HttpProvider
from providers.breaker import BreakerConfig, CircuitBreaker, MemoryBreakerStore
from providers.contract import LookupResult
from providers.errors import RateLimited
from providers.ratelimit import RateLimitConfig
from providers.sandbox import SandboxHandle
from providers.sandbox.catalogue import SandboxTrack

from .conftest import ProviderFactory

FIELDS = ["bpm", "key", "energy", "danceability"]
UNKNOWN = "00000000-0000-4000-8000-000000000000"


def _tracks(sandbox: SandboxHandle, n: int) -> list[SandboxTrack]:
    plain = [t for t in sandbox.state.catalogue.tracks if not t.overrides]
    return plain[1 : n + 1]


def _query(mbid: str) -> TrackQuery:
    return TrackQuery("Artist", "Title", provider_ids={"musicbrainz": mbid})


def _requests(sandbox: SandboxHandle) -> int:
    return sandbox.stats().get("acousticbrainz", {}).get("requests", 0)


def _comparable(result: LookupResult) -> tuple[Any, ...]:
    return result.status, result.values, result.unavailable, result.rejected


def test_a_batch_asks_once_per_level_and_each_lookup_stores_its_own_part(
    sandbox: SandboxHandle, make_provider: ProviderFactory
) -> None:
    """Three known recordings and one unknown: two requests (low- and high-level) instead of
    eight; every lookup gives what it gives alone; each stores its one-id request and part; the
    two requests are counted once each (``calls``)."""
    mbids = [t.provider_id("musicbrainz") for t in _tracks(sandbox, 3)] + [UNKNOWN]
    alone_client = make_provider("acousticbrainz", sandbox.env)
    alone = [alone_client.lookup(_query(m), FIELDS) for m in mbids]
    assert [r.status for r in alone] == ["found", "found", "found", "not_found"]

    client = make_provider("acousticbrainz", sandbox.env)
    before = _requests(sandbox)
    with client.batched([_query(m) for m in mbids], FIELDS) as held:
        batched = [client.lookup(_query(m), FIELDS) for m in mbids]
    assert held == 8  # 4 ids x 2 levels
    assert _requests(sandbox) - before == 2

    assert [_comparable(r) for r in batched] == [_comparable(r) for r in alone]
    for mbid, result in zip(mbids, batched, strict=True):
        assert {r.params["recording_ids"] for r in result.responses} == {mbid}
        assert all(r.endpoint.endswith(("/low-level", "/high-level")) for r in result.responses)
    assert [r.body for r in batched[0].responses] == [r.body for r in alone[0].responses]
    assert sum(r.calls for res in batched for r in res.responses) == 2
    assert client._held == {}  # nothing outlives the block


@pytest.mark.usefixtures("replay_clients")
def test_stored_replay_answers_a_batched_lookup_from_its_parts(
    sandbox: SandboxHandle, make_provider: ProviderFactory
) -> None:
    """The stored parts are what a one-id request answers: replay parses them to the same
    values with no request at all."""
    mbids = [t.provider_id("musicbrainz") for t in _tracks(sandbox, 2)]
    client = make_provider("acousticbrainz", sandbox.env)
    with client.batched([_query(m) for m in mbids], FIELDS):
        live = [client.lookup(_query(m), FIELDS) for m in mbids]
    before = _requests(sandbox)
    for mbid, result in zip(mbids, live, strict=True):
        stored = [
            stored_exchange(r.endpoint, r.params, r.status_code, r.body) for r in result.responses
        ]
        li = LookupInput(
            "job", "run", "bronze", "acousticbrainz", FIELDS, _query(mbid), None, Decimal(0)
        )
        replayed = parse_stored(None, li, stored)  # type: ignore[arg-type]
        assert _comparable(replayed) == _comparable(result)
    assert _requests(sandbox) == before


@pytest.fixture
def replay_clients(monkeypatch: pytest.MonkeyPatch, sandbox: SandboxHandle) -> None:
    for key, value in sandbox.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(stored_answers, "_providers", {})


def test_a_part_answers_one_request_only(
    sandbox: SandboxHandle, make_provider: ProviderFactory
) -> None:
    """Asking the same recording twice in a block: the second lookup goes to the network."""
    mbids = [t.provider_id("musicbrainz") for t in _tracks(sandbox, 2)]
    client = make_provider("acousticbrainz", sandbox.env)
    with client.batched([_query(m) for m in mbids], ["bpm"]):
        before = _requests(sandbox)
        first = client.lookup(_query(mbids[0]), ["bpm"])
        again = client.lookup(_query(mbids[0]), ["bpm"])
    assert _requests(sandbox) - before == 1
    assert [r.calls for r in first.responses] == [1]
    assert [r.calls for r in again.responses] == [1]
    assert again.values == first.values


def test_no_batch_request_while_the_breaker_is_open_or_for_a_single_lookup(
    sandbox: SandboxHandle, make_provider: ProviderFactory
) -> None:
    mbids = [t.provider_id("musicbrainz") for t in _tracks(sandbox, 2)]
    breaker = CircuitBreaker("acousticbrainz", BreakerConfig(), store=MemoryBreakerStore())
    for _ in range(BreakerConfig().failure_threshold):
        breaker.record_failure()
    client = make_provider("acousticbrainz", sandbox.env, breaker=breaker)
    before = _requests(sandbox)
    with client.batched([_query(m) for m in mbids], ["bpm"]) as held:
        assert held == 0
    with make_provider("acousticbrainz", sandbox.env).batched([_query(mbids[0])], ["bpm"]) as one:
        assert one == 0
    assert _requests(sandbox) == before


# --- failures (respx, the old API's shapes) ------------------------------------------------------
BASE = "https://ab.example.test/api/v1"
ENV = {"SONGNODES_ACOUSTICBRAINZ_BASE_URL": BASE}
A, B = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"


def _low(bpm: float) -> dict[str, Any]:
    return {
        "rhythm": {"bpm": bpm},
        "tonal": {"key_key": "A", "key_scale": "minor"},
        "metadata": {"tags": {"artist": ["Artist"], "title": ["Title"]}},
    }


def _answer(request: httpx.Request, fail_bulk: httpx.Response) -> httpx.Response:
    ids = request.url.params["recording_ids"].split(";")
    if len(ids) > 1:
        return fail_bulk
    return httpx.Response(200, json={ids[0]: {"0": _low(120.0 if ids[0] == A else 128.0)}})


@pytest.mark.parametrize(
    "fail_bulk",
    [
        httpx.Response(503, text="upstream down"),
        httpx.Response(200, json=["not", "an", "object"]),
        httpx.Response(200, text="<html>gateway</html>"),
    ],
    ids=["503", "array", "html"],
)
@respx.mock
def test_a_failed_batch_request_leaves_the_lookups_to_ask_one_by_one(
    fail_bulk: httpx.Response, make_provider: ProviderFactory, caplog: pytest.LogCaptureFixture
) -> None:
    route = respx.get(f"{BASE}/low-level").mock(side_effect=lambda r: _answer(r, fail_bulk))
    client = make_provider("acousticbrainz", ENV)
    with caplog.at_level(logging.WARNING), client.batched([_query(A), _query(B)], ["bpm"]) as held:
        results = [client.lookup(_query(m), ["bpm"]) for m in (A, B)]
    assert held == 0
    assert "acousticbrainz batch request failed" in caplog.text
    assert [r.values["bpm"].value for r in results] == [120.0, 128.0]
    assert [[r.calls for r in res.responses] for res in results] == [[1], [1]]
    one_id = [c.request.url.params["recording_ids"] for c in route.calls][-2:]
    assert one_id == [A, B]


@respx.mock
def test_the_bulk_request_names_every_id_and_splits_at_25(make_provider: ProviderFactory) -> None:
    ids = [f"{n:08d}-0000-4000-8000-000000000000" for n in range(30)]
    route = respx.get(f"{BASE}/low-level").mock(
        side_effect=lambda r: httpx.Response(
            200, json={i: {"0": _low(100.0)} for i in r.url.params["recording_ids"].split(";")}
        )
    )
    client = make_provider("acousticbrainz", ENV)
    with client.batched([_query(i) for i in ids], ["bpm"]) as held:
        assert held == 30
    sent = [c.request.url.params["recording_ids"].split(";") for c in route.calls]
    assert [len(s) for s in sent] == [25, 5]
    assert sorted(i for s in sent for i in s) == sorted(ids)


def test_overlapping_blocks_on_one_client_keep_each_others_parts(
    sandbox: SandboxHandle, make_provider: ProviderFactory
) -> None:
    """Two messages' blocks at once on one client (a thread-pool worker shares clients): the
    first block ending removes only its own parts, so the second block's lookups still find
    theirs, including a recording both asked for."""
    m1, m2, m3 = (t.provider_id("musicbrainz") for t in _tracks(sandbox, 3))
    client = make_provider("acousticbrainz", sandbox.env)
    first = client.batched([_query(m1), _query(m2)], ["bpm"])
    second = client.batched([_query(m1), _query(m3)], ["bpm"])
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    before = _requests(sandbox)
    results = [client.lookup(_query(m), ["bpm"]) for m in (m1, m3)]
    assert _requests(sandbox) == before  # both answered from the second block's parts
    assert all(r.status == "found" for r in results)
    second.__exit__(None, None, None)
    assert client._held == {}


def test_a_crash_in_batch_code_leaves_the_lookups_to_ask_one_by_one(
    sandbox: SandboxHandle,
    make_provider: ProviderFactory,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    mbids = [t.provider_id("musicbrainz") for t in _tracks(sandbox, 2)]
    client = make_provider("acousticbrainz", sandbox.env)

    def broken(*_: Any) -> list[Any]:
        raise KeyError("0")

    monkeypatch.setattr(client, "batch_parts", broken)
    with (
        caplog.at_level(logging.ERROR),
        client.batched([_query(m) for m in mbids], ["bpm"]) as held,
    ):
        results = [client.lookup(_query(m), ["bpm"]) for m in mbids]
    assert held == 0 and "acousticbrainz batch request crashed" in caplog.text
    assert [r.status for r in results] == ["found", "found"]


def test_a_provider_without_a_batch_endpoint_costs_nothing_extra(
    sandbox: SandboxHandle, make_provider: ProviderFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No request and no breaker read (a Redis round trip) per message for the others."""

    def no_read(self: CircuitBreaker) -> Any:
        raise AssertionError("breaker read")

    monkeypatch.setattr(CircuitBreaker, "state", property(no_read))
    client = make_provider("deezer", sandbox.env)
    before = sandbox.stats().get("deezer", {}).get("requests", 0)
    with client.batched([TrackQuery("A", "B"), TrackQuery("C", "D")], ["bpm"]) as held:
        assert held == 0
    assert sandbox.stats().get("deezer", {}).get("requests", 0) == before


@respx.mock
def test_an_id_the_server_maps_to_another_spelling_gets_its_document(
    make_provider: ProviderFactory,
) -> None:
    """The old API answered a non-canonical id (here upper case) under the canonical one and
    listed the pair in ``mbid_mapping``; the part keeps both, as a one-id request would."""
    canonical = "aaaaaaaa-1111-4111-8111-111111111111"
    upper = canonical.upper()
    respx.get(f"{BASE}/low-level").respond(
        200,
        json={
            canonical: {"0": _low(121.0)},
            B: {"0": _low(122.0)},
            "mbid_mapping": {upper: canonical},
        },
    )
    client = make_provider("acousticbrainz", ENV)
    with client.batched([_query(upper), _query(B)], ["bpm"]) as held:
        results = [client.lookup(_query(m), ["bpm"]) for m in (upper, B)]
    assert held == 2
    assert [r.values["bpm"].value for r in results] == [121.0, 122.0]
    assert results[0].responses[0].body == {
        canonical: {"0": _low(121.0)},
        "mbid_mapping": {upper: canonical},
    }


# AcousticBrainz's bulk answer shape: {mbid: {"0": document}} (never sent in these tests).
BULK_OK = httpx.Response(200, json={A: {"0": _low(120.0)}, B: {"0": _low(128.0)}})


def _refusing_client(make_provider: ProviderFactory, bulk: respx.Route) -> HttpProvider:
    """An AcousticBrainz client whose shared limit (1/s, no sleeping) was just spent."""
    client = make_provider("acousticbrainz", ENV, rate=RateLimitConfig(per_second=1))
    client.limiter.max_wait = 0.0
    client.limiter.clear()
    client.limiter.acquire()
    return client


@respx.mock
def test_a_batch_request_refused_by_our_limiter_asks_nothing_one_by_one(
    make_provider: ProviderFactory,
) -> None:
    """Refused by our own limiter, the batch request raises ``RateLimited(local)`` and no
    lookup is asked one id at a time: that would spend a request per lookup, at the very
    provider whose limit is spent (before the fix, a limited pass of bench/sightings paid 1.14
    AcousticBrainz calls per track instead of ~0.12)."""
    bulk = respx.get(f"{BASE}/low-level").mock(side_effect=lambda r: _answer(r, BULK_OK))
    client = _refusing_client(make_provider, bulk)
    try:
        with pytest.raises(RateLimited) as info, client.batched([_query(A), _query(B)], ["bpm"]):
            pytest.fail("the block must not run: its lookups would ask one by one")
        assert info.value.local and info.value.retry_after > 0
        assert bulk.call_count == 0
    finally:
        client.limiter.clear()


@respx.mock
def test_a_message_whose_batch_request_is_refused_waits_its_turn_whole(
    make_provider: ProviderFactory,
) -> None:
    """``ask_leased``: every lookup of the message goes back for retry together, with the
    refusal as the reason (back pressure: it spends no retry), and nothing is sent."""
    bulk = respx.get(f"{BASE}/low-level").mock(side_effect=lambda r: _answer(r, BULK_OK))
    client = _refusing_client(make_provider, bulk)
    inputs = [
        LookupInput(f"job-{m[:4]}", "run", f"bronze-{m[:4]}", "acousticbrainz", ["bpm"],
                    _query(m), None, Decimal("0.01"))
        for m in (A, B)
    ]  # fmt: skip
    try:
        batch = ask_leased(client, Leased("holder", inputs, []), attempts=5, can_retry=False)
    finally:
        client.limiter.clear()
    assert batch.outcomes == []
    assert batch.retry_ids == ["job-1111", "job-2222"]
    assert isinstance(batch.retry_error, RateLimited) and is_back_pressure(batch.retry_error)
    assert bulk.call_count == 0


@respx.mock
def test_a_batch_request_answered_429_on_the_last_attempt_gives_the_lookups_up(
    make_provider: ProviderFactory,
) -> None:
    """The provider's own 429 with a long ``Retry-After`` on the last attempt: the lookups are
    given up as failures (as one refused alone would be), not asked one by one."""
    throttled = httpx.Response(429, headers={"Retry-After": "120"}, json={"message": "slow"})
    bulk = respx.get(f"{BASE}/low-level").mock(side_effect=lambda r: _answer(r, throttled))
    client = make_provider("acousticbrainz", ENV)
    inputs = [
        LookupInput(f"job-{m[:4]}", "run", f"bronze-{m[:4]}", "acousticbrainz", ["bpm"],
                    _query(m), None, Decimal("0.01"))
        for m in (A, B)
    ]  # fmt: skip
    batch = ask_leased(client, Leased("holder", inputs, []), attempts=5, can_retry=False)
    assert batch.retry_ids == []
    assert [o.li.job_id for o in batch.outcomes] == ["job-1111", "job-2222"]
    assert all("gave up after 5 attempts: RateLimited" in (o.error or "") for o in batch.outcomes)
    assert {c.request.url.params["recording_ids"] for c in bulk.calls} == {f"{A};{B}"}
