"""Clients against respx fixtures of the real APIs' error shapes: every failure is typed."""

from __future__ import annotations

import httpx
import pytest
import respx

from pipeline.matching import TrackQuery
from providers.errors import (
    AuthError,
    MalformedResponse,
    ProviderError,
    RateLimited,
    TransientError,
)
from providers.registry import configure_for_sandbox
from providers.sandbox import SandboxHandle

from .conftest import ProviderFactory

BASE = "http://fake.test"
ENV = configure_for_sandbox(BASE)
Q = TrackQuery("Daft Punk", "Harder Better Faster Stronger", isrc="GBDUW0000059")
TOKEN = {"access_token": "secret-bearer", "token_type": "Bearer", "expires_in": 3600}
SPOTIFY_TRACK = {
    "id": "5W3cjX2J3tjhG8zb6u0qHn",
    "name": "Harder Better Faster Stronger",
    "artists": [{"id": "4tZwfgrHOc3mvqYlEYSvVi", "name": "Daft Punk", "uri": "x"}],
    "album": {
        "id": "a",
        "name": "Discovery",
        "release_date": "2001-03-07",
        "release_date_precision": "day",
    },
    "duration_ms": 224693,
    "external_ids": {"isrc": "GBDUW0000059"},
}
DEEZER_TRACK = {
    "id": 3135556, "title": "Harder, Better, Faster, Stronger", "duration": 224,
    "isrc": "GBDUW0000059", "release_date": "2001-03-07", "bpm": 123, "gain": -12.4,
    "artist": {"id": 27, "name": "Daft Punk"}, "album": {"id": 302127, "title": "Discovery"},
}  # fmt: skip


@respx.mock
def test_spotify_audio_features_403_is_capability(make_provider: ProviderFactory) -> None:
    """403 on audio-features makes bpm/key unavailable; spotify_id/isrc still returned."""
    respx.post(f"{BASE}/spotify/api/token").respond(json=TOKEN)
    respx.get(f"{BASE}/spotify/v1/search").respond(json={"tracks": {"items": [SPOTIFY_TRACK]}})
    respx.get(url__regex=r".*/audio-features/.*").respond(403, json={"error": {"status": 403}})
    result = make_provider("spotify", ENV).lookup(Q, ["spotify_id", "isrc", "bpm", "key"])
    assert result.values["isrc"].value == "GBDUW0000059"
    assert set(result.unavailable) == {"bpm", "key"}
    assert "secret-bearer" not in repr(result.responses)


def _spotify_with_features(make_provider: ProviderFactory, status: int, **settings: object) -> int:
    """Two lookups on one client while audio-features answers ``status``; returns how many
    audio-features requests were made. Both lookups keep their identity fields."""
    respx.post(f"{BASE}/spotify/api/token").respond(json=TOKEN)
    respx.get(f"{BASE}/spotify/v1/search").respond(json={"tracks": {"items": [SPOTIFY_TRACK]}})
    features = respx.get(url__regex=r".*/audio-features/.*").respond(status, json={"error": {}})
    provider = make_provider("spotify", ENV, **settings)
    for _ in range(2):
        result = provider.lookup(Q, ["spotify_id", "isrc", "bpm", "key"])
        assert result.values["isrc"].value == "GBDUW0000059"
        assert set(result.unavailable) == {"bpm", "key"}
        assert "audio-features closed" in result.unavailable["bpm"]
    return int(features.call_count)


@respx.mock
def test_spotify_stops_asking_closed_audio_features(make_provider: ProviderFactory) -> None:
    """After a 403 (closed to new apps) audio features are not requested again for
    ``audio_features_recheck_s``: one paid request per track saved."""
    assert _spotify_with_features(make_provider, 403) == 1


@respx.mock
def test_spotify_recheck_zero_asks_every_time(make_provider: ProviderFactory) -> None:
    assert _spotify_with_features(make_provider, 403, audio_features_recheck_s=0) == 2


@respx.mock
def test_spotify_audio_features_404_is_per_track(make_provider: ProviderFactory) -> None:
    """404 means no features for this track, not a closed endpoint: keep asking."""
    assert _spotify_with_features(make_provider, 404) == 2


@respx.mock
def test_spotify_429_quota_exceeded_raises_with_retry_after(make_provider: ProviderFactory) -> None:
    """A 429 with Retry-After 30 exceeds the in-call budget and surfaces as RateLimited(30)."""
    respx.post(f"{BASE}/spotify/api/token").respond(json=TOKEN)
    body = {"error": {"status": 429, "message": "Too many requests", "reason": "QUOTA_EXCEEDED"}}
    route = respx.get(f"{BASE}/spotify/v1/search").respond(
        429, json=body, headers={"Retry-After": "30"}
    )
    with pytest.raises(RateLimited) as info:
        make_provider("spotify", ENV).lookup(Q, ["isrc"])
    assert info.value.retry_after == 30 and "QUOTA_EXCEEDED" in str(info.value)
    assert route.call_count == 1
    assert info.value.responses and info.value.responses[-1].status_code == 429


@respx.mock
def test_spotify_token_refreshed_on_401(make_provider: ProviderFactory) -> None:
    """A 401 on an API call fetches a new token and retries once."""
    token = respx.post(f"{BASE}/spotify/api/token").respond(json=TOKEN)
    respx.get(f"{BASE}/spotify/v1/search").mock(
        side_effect=[
            httpx.Response(401, json={}),
            httpx.Response(200, json={"tracks": {"items": [SPOTIFY_TRACK]}}),
        ]
    )
    result = make_provider("spotify", ENV).lookup(Q, ["isrc"])
    assert result.status == "found" and token.call_count == 2


@respx.mock
def test_musicbrainz_503_is_rate_limit_and_retried(make_provider: ProviderFactory) -> None:
    """MusicBrainz 503 is a throttle: retried within budget honouring Retry-After, then OK."""
    rec = {
        "id": "m1",
        "title": Q.title,
        "length": 224000,
        "isrcs": ["GBDUW0000059"],
        "artist-credit": [{"name": "Daft Punk", "joinphrase": ""}],
        "first-release-date": "2001-03-07",
    }
    respx.get(f"{BASE}/musicbrainz/ws/2/isrc/GBDUW0000059").mock(
        side_effect=[
            httpx.Response(503, text="<html>slow down</html>", headers={"Retry-After": "1"}),
            httpx.Response(200, json={"isrc": "GBDUW0000059", "recordings": [rec]}),
        ]
    )
    sleeps: list[float] = []
    result = make_provider("musicbrainz", ENV, sleeps=sleeps).lookup(Q, ["musicbrainz_id"])
    assert result.values["musicbrainz_id"].value == "m1"
    assert sleeps == [1.0]
    assert [r.status_code for r in result.responses] == [503, 200]


@respx.mock
def test_discogs_remaining_zero_blocks_next_call(make_provider: ProviderFactory) -> None:
    """X-Discogs-Ratelimit-Remaining: 0 keeps the reply but makes the next call RateLimited."""
    headers = {"X-Discogs-Ratelimit": "60", "X-Discogs-Ratelimit-Remaining": "0"}
    release = {
        "id": 1,
        "title": Q.title,
        "artists": [{"name": "Daft Punk"}],
        "genres": ["Electronic"],
        "styles": ["House"],
        "released": "2001-00-00",
        "labels": [{"name": "Virgin"}],
    }
    respx.get(f"{BASE}/discogs/releases/1").respond(json=release, headers=headers)
    provider = make_provider("discogs", ENV)
    q = TrackQuery(Q.artist, Q.title, provider_ids={"discogs": "1"})
    result = provider.lookup(q, ["release_date", "genre"])
    assert result.values["release_date"].value == "2001"
    with pytest.raises(RateLimited) as info:
        provider.lookup(q, ["genre"])
    assert 0 < info.value.retry_after <= 1.0


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (29, RateLimited),
        (10, AuthError),
        (26, AuthError),
        (11, TransientError),
        (16, TransientError),
    ],
)
@respx.mock
def test_lastfm_body_errors_with_http_200(
    code: int, error: type[ProviderError], make_provider: ProviderFactory
) -> None:
    """Last.fm error codes inside HTTP 200 bodies map to the typed errors."""
    respx.get(f"{BASE}/lastfm/2.0/").respond(200, json={"error": code, "message": "x"})
    with pytest.raises(error):
        make_provider("lastfm", ENV).lookup(Q, ["genre"])


@respx.mock
def test_lastfm_code_6_is_not_found(make_provider: ProviderFactory) -> None:
    """Last.fm error 6 is 'track not found': a not_found result, not an error."""
    respx.get(f"{BASE}/lastfm/2.0/").respond(200, json={"error": 6, "message": "Track not found"})
    assert make_provider("lastfm", ENV).lookup(Q, ["genre"]).status == "not_found"


@respx.mock
def test_deezer_body_errors(make_provider: ProviderFactory) -> None:
    """Deezer code 4 (quota) is RateLimited; code 800 on the ISRC route falls back to search."""
    quota = {"error": {"type": "Exception", "message": "Quota limit exceeded", "code": 4}}
    respx.get(f"{BASE}/deezer/track/isrc:GBDUW0000059").respond(200, json=quota)
    with pytest.raises(RateLimited):
        make_provider("deezer", ENV).lookup(Q, ["bpm"])
    respx.get(f"{BASE}/deezer/track/isrc:GBDUW0000059").respond(
        200, json={"error": {"type": "DataException", "message": "no data", "code": 800}}
    )
    respx.get(f"{BASE}/deezer/search/track").respond(json={"data": [], "total": 0})
    assert make_provider("deezer", ENV).lookup(Q, ["bpm"]).status == "not_found"


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, text='{"id": 3135556, "title": "Harder'),  # truncated JSON
        httpx.Response(200, text="<html><body>Maintenance</body></html>"),  # HTML page
        httpx.Response(200, json=[1, 2, 3]),  # wrong top-level type
        httpx.Response(200, json={"id": 1, "title": None, "artist": "nope"}),  # wrong field types
        httpx.Response(200, content=b"x" * (10 * 1024 * 1024)),  # 10 MB body
    ],
    ids=["truncated", "html", "list", "wrong-types", "10MB"],
)
@respx.mock
def test_garbage_bodies_are_malformed(
    response: httpx.Response, make_provider: ProviderFactory
) -> None:
    """Truncated JSON, HTML, wrong types and oversize bodies raise MalformedResponse."""
    respx.get(f"{BASE}/deezer/track/isrc:GBDUW0000059").mock(return_value=response)
    with pytest.raises(MalformedResponse) as info:
        make_provider("deezer", ENV).lookup(Q, ["bpm"])
    assert info.value.responses, "the failed exchange is still recorded"


@respx.mock
def test_garbage_values_go_to_rejected(make_provider: ProviderFactory) -> None:
    """BPM 999, '128bpm', empty strings and bad ISRCs are rejected with reasons, others kept."""
    track = {**DEEZER_TRACK, "bpm": 999, "isrc": "", "release_date": "0000-00-00"}
    respx.get(f"{BASE}/deezer/track/isrc:GBDUW0000059").respond(json=track)
    result = make_provider("deezer", ENV).lookup(Q, ["bpm", "isrc", "release_date", "duration_ms"])
    assert set(result.rejected) >= {"bpm", "release_date"}
    assert result.values["duration_ms"].value == 224000
    assert "bpm" not in result.values


@respx.mock
def test_server_error_retried_then_transient(make_provider: ProviderFactory) -> None:
    """A persistent 500 is retried once (backoff) and then raised as TransientError."""
    route = respx.get(f"{BASE}/deezer/track/isrc:GBDUW0000059").respond(500, text="oops")
    sleeps: list[float] = []
    with pytest.raises(TransientError):
        make_provider("deezer", ENV, sleeps=sleeps).lookup(Q, ["bpm"])
    assert route.call_count == 2 and len(sleeps) == 1 and 0 < sleeps[0] <= 1.2


def test_slow_provider_hits_timeout(sandbox: SandboxHandle, make_provider: ProviderFactory) -> None:
    """A sandbox provider slower than the client timeout raises TransientError quickly."""
    sandbox.configure("getsongbpm", latency_ms=1500)
    try:
        provider = make_provider("getsongbpm", sandbox.env, timeout=0.3)
        with pytest.raises(TransientError, match="timeout"):
            provider.lookup(TrackQuery("a", "b"), ["bpm"])
    finally:
        sandbox.configure("getsongbpm", latency_ms=0)


def test_sandbox_injected_errors_are_typed(
    sandbox: SandboxHandle, make_provider: ProviderFactory
) -> None:
    """Sandbox 500/HTML/malformed injections all surface as typed ProviderErrors."""
    t = sandbox.state.catalogue.tracks[1]
    for kind, error in (
        ("500", TransientError),
        ("html", TransientError),
        ("malformed", MalformedResponse),
    ):
        sandbox.configure("tidal", errors={kind: 1.0})
        try:
            with pytest.raises(error):
                make_provider("tidal", sandbox.env).lookup(
                    TrackQuery(t.base["artist"], t.base["title"]), ["bpm"]
                )
        finally:
            sandbox.configure("tidal", errors={})
