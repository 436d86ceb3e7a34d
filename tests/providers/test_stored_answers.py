"""Stored replay hands each provider's own parser the stored exchanges without any HTTP
(``HttpProvider.answerer``): it must parse exactly what the live lookup parsed, and a stored
failure must stay a failure that stores and costs nothing."""

from __future__ import annotations

import csv
from decimal import Decimal
from typing import Any

import pytest

from pipeline import stored_answers
from pipeline.enrich import LookupInput
from pipeline.matching import TrackQuery
from pipeline.stored_answers import (
    NoStoredResponse,
    StoredExchange,
    _current,
    parse_stored,
    stored_answer,
    stored_exchange,
)
from providers.base import CannedReply
from providers.errors import MalformedResponse, TransientError
from providers.registry import get_provider
from providers.sandbox import PROVIDERS, SandboxHandle
from providers.sandbox.catalogue import DEFAULT_CATALOGUE

from .conftest import settings_from_env

FIELDS = ["bpm", "key", "isrc", "genre", "release_date"]


def _first_catalogue_track() -> dict[str, str]:
    with open(DEFAULT_CATALOGUE, encoding="utf-8") as fh:
        return next(csv.DictReader(line for line in fh if not line.startswith("#")))


def _input(provider: str, query: TrackQuery) -> LookupInput:
    return LookupInput("job", "run", "bronze", provider, FIELDS, query, None, Decimal(0))


def _as_stored(responses: list[Any]) -> list[StoredExchange]:
    """The live exchanges as bronze stores them, read back as the replay reads them."""
    return [
        stored_exchange(r.endpoint, r.params, r.status_code, r.body)
        for r in responses
    ]  # fmt: skip


@pytest.fixture
def replay_clients(monkeypatch: pytest.MonkeyPatch, sandbox: SandboxHandle) -> None:
    """Replay builds its clients from the environment, as the live run's workers did: same base
    URLs, so the stored paths are the ones it asks for. Fresh clients for each test."""
    for key, value in sandbox.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(stored_answers, "_providers", {})


@pytest.mark.parametrize("name", sorted(PROVIDERS))
@pytest.mark.usefixtures("replay_clients")
def test_stored_lookup_parses_what_the_live_lookup_parsed(
    name: str, sandbox: SandboxHandle
) -> None:
    track = _first_catalogue_track()
    query = TrackQuery(track["artist"], track["title"])
    if name == "acousticbrainz":  # it looks tracks up by MusicBrainz id only
        with get_provider("musicbrainz", settings_from_env("musicbrainz", sandbox.env)) as mb:  # type: ignore[attr-defined]
            mbid = mb.lookup(query, ["musicbrainz_id"]).values["musicbrainz_id"].value
        query = TrackQuery(track["artist"], track["title"], provider_ids={"musicbrainz": mbid})
    with get_provider(name, settings_from_env(name, sandbox.env)) as live:  # type: ignore[attr-defined]
        expected = live.lookup(query, FIELDS)
    assert expected.responses, "the live lookup made requests"
    before = sum(sum(v.values()) for v in sandbox.stats().values())

    replayed = parse_stored(None, _input(name, query), _as_stored(expected.responses))  # type: ignore[arg-type]

    assert sum(sum(v.values()) for v in sandbox.stats().values()) == before  # no HTTP at all
    assert replayed.status == expected.status
    assert replayed.values == expected.values
    assert replayed.match_confidence == expected.match_confidence
    assert replayed.responses == []  # nothing new to store, nothing to pay


def _answer_with(
    stored: list[StoredExchange], method: str, url: str, params: Any = None
) -> CannedReply:
    token = _current.set(stored)
    try:
        return stored_answer(method, url, params)
    finally:
        _current.reset(token)


def test_answer_prefers_the_final_reply_and_matches_params_as_httpx_encodes_them() -> None:
    url = "https://api.example.test/v1/search"
    stored = [
        stored_exchange(f"GET {url}", {"q": "x", "limit": 5, "explicit": True}, 503, {"e": 1}),
        stored_exchange(f"GET {url}", {"q": "x", "limit": 5, "explicit": True}, 200, {"ok": 1}),
        stored_exchange(f"GET {url}", {"q": "other", "limit": 5}, 200, {"ok": 2}),
    ]
    reply = _answer_with(stored, "GET", url, {"q": "x", "limit": 5, "explicit": True})
    assert (reply.status_code, reply.body, reply.is_json) == (200, {"ok": 1}, True)
    # The query string of the URL counts like params (a provider may build either).
    reply = _answer_with(stored, "GET", f"{url}?q=other&limit=5")
    assert reply.body == {"ok": 2}


def test_redacted_params_match_any_value() -> None:
    url = "https://api.example.test/2.0/"
    stored = [stored_exchange(f"GET {url}", {"api_key": "***", "track": "t"}, 200, {"ok": 1})]
    assert _answer_with(stored, "GET", url, {"api_key": "real-key", "track": "t"}).body == {"ok": 1}


def test_token_request_is_answered_when_the_original_reused_a_cached_token() -> None:
    reply = _answer_with([], "POST", "https://accounts.example.test/api/token")
    assert reply.status_code == 200
    assert reply.body["access_token"] == "stored-replay"


def test_nothing_stored_is_a_typed_failure_never_a_call() -> None:
    with pytest.raises(NoStoredResponse, match="no stored response for GET /v1/x"):
        _answer_with([], "GET", "https://api.example.test/v1/x")
    with pytest.raises(NoStoredResponse, match="outside a stored lookup"):
        stored_answer("GET", "https://api.example.test/v1/x", None)


def test_a_stored_timeout_replays_as_a_timeout() -> None:
    url = "https://api.example.test/v1/x"
    stored = [stored_exchange(f"GET {url}", {}, None, {"_error": "timeout"})]
    with pytest.raises(TransientError, match="timed out"):
        _answer_with(stored, "GET", url)


@pytest.mark.parametrize("name", ["deezer", "musicbrainz", "spotify"])
@pytest.mark.usefixtures("replay_clients")
def test_failed_stored_lookup_carries_no_responses(name: str, sandbox: SandboxHandle) -> None:
    """A stored exchange that no longer parses (here: an HTML error page) fails the lookup
    with a typed error. Before, the error carried the re-served exchanges, so the replay stored
    them in bronze again and counted them as paid calls."""
    track = _first_catalogue_track()
    query = TrackQuery(track["artist"], track["title"])
    with get_provider(name, settings_from_env(name, sandbox.env)) as live:  # type: ignore[attr-defined]
        responses = live.lookup(query, FIELDS).responses
    broken = [
        stored_exchange(r.endpoint, r.params, r.status_code, {"_text": "<html>gateway</html>"})
        for r in responses
    ]
    with pytest.raises(MalformedResponse, match="not JSON") as info:
        parse_stored(None, _input(name, query), broken)  # type: ignore[arg-type]
    assert info.value.responses == []


@pytest.mark.usefixtures("replay_clients")
def test_an_optional_request_the_original_skipped_replays_as_unavailable(
    sandbox: SandboxHandle,
) -> None:
    """A live Spotify client that already saw audio-features answer 403 skips them for the next
    track; replaying that track finds no stored audio-features exchange and reports the fields
    unavailable (not a failed lookup); the identity fields replay as they were."""
    from providers.base import HttpProvider

    tracks = []
    with open(DEFAULT_CATALOGUE, encoding="utf-8") as fh:
        for row in csv.DictReader(line for line in fh if not line.startswith("#")):
            tracks.append(TrackQuery(row["artist"], row["title"]))
            if len(tracks) == 2:
                break
    with get_provider("spotify", settings_from_env("spotify", sandbox.env)) as live:  # type: ignore[attr-defined]
        assert isinstance(live, HttpProvider)
        first, second = (live.lookup(q, FIELDS) for q in tracks)
    assert any("/audio-features/" in r.endpoint for r in first.responses)
    assert not any("/audio-features/" in r.endpoint for r in second.responses)

    replayed = parse_stored(None, _input("spotify", tracks[1]), _as_stored(second.responses))  # type: ignore[arg-type]
    assert replayed.status == second.status == "found"
    assert replayed.values == second.values
    assert "bpm" in replayed.unavailable and "bpm" in second.unavailable
    assert "not requested by the original lookup" in replayed.unavailable["bpm"]
    again = parse_stored(None, _input("spotify", tracks[0]), _as_stored(first.responses))  # type: ignore[arg-type]
    assert again.values == first.values and again.unavailable == first.unavailable
