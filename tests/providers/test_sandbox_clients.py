"""Every client against the sandbox: real endpoints, native shapes, overrides, redaction."""

from __future__ import annotations

import json

import pytest

from pipeline.matching import TrackQuery
from providers.contract import LookupResult
from providers.sandbox import SandboxHandle
from providers.sandbox.catalogue import SandboxTrack
from providers.settings import SETTINGS_CLASSES

from .conftest import ProviderFactory

ALL = sorted(SETTINGS_CLASSES)
# Providers that can find a track from artist + title alone.
SEARCHABLE = [p for p in ALL if p != "acousticbrainz"]


def _track(sandbox: SandboxHandle) -> SandboxTrack:
    """A catalogue track with no per-provider overrides."""
    return next(t for t in sandbox.state.catalogue.tracks[1:] if not t.overrides)


def _query(t: SandboxTrack, **kw: object) -> TrackQuery:
    return TrackQuery(t.base["artist"], t.base["title"], **kw)  # type: ignore[arg-type]


def _lookup(
    make_provider: ProviderFactory, sandbox: SandboxHandle, name: str, q: TrackQuery
) -> LookupResult:
    provider = make_provider(name, sandbox.env)
    return provider.lookup(q, provider.supported_fields)


@pytest.mark.parametrize("name", SEARCHABLE)
def test_search_finds_catalogue_values(
    name: str, sandbox: SandboxHandle, make_provider: ProviderFactory
) -> None:
    """Artist+title search returns the catalogue's canonical values at exact-match confidence."""
    t = _track(sandbox)
    result = _lookup(make_provider, sandbox, name, _query(t))
    assert result.status == "found", result
    assert 0.9 <= result.match_confidence < 0.99
    expected = {
        "bpm": float(t.base["bpm"]),
        "key": t.base["key"],
        "isrc": t.base["isrc"],
        "release_date": t.base["release_date"],
        "label": t.base["label"],
    }
    for field, value in expected.items():
        if field in result.values:
            assert result.values[field].value == value, field
    assert not result.rejected
    assert result.responses, "raw responses must be collected"


@pytest.mark.parametrize("name", ["beatport", "spotify", "musicbrainz", "deezer", "tidal"])
def test_isrc_match_is_near_certain(
    name: str, sandbox: SandboxHandle, make_provider: ProviderFactory
) -> None:
    """A hit by ISRC reports the ISRC-equality confidence (~0.99), not a per-provider constant."""
    t = _track(sandbox)
    result = _lookup(make_provider, sandbox, name, _query(t, isrc=t.base["isrc"]))
    assert result.match_confidence >= 0.98
    assert result.values["isrc"].value == t.base["isrc"]


def test_weak_fuzzy_match_has_low_confidence(
    sandbox: SandboxHandle, make_provider: ProviderFactory
) -> None:
    """A query that only half matches the found track is reported with a low confidence."""
    t = _track(sandbox)
    q = TrackQuery(t.base["artist"], t.base["title"] + " Remix Edit VIP")
    result = _lookup(make_provider, sandbox, "deezer", q)
    assert result.status == "not_found" or result.match_confidence < 0.9


def test_beatport_half_time_bpm_is_doubted(
    sandbox: SandboxHandle, make_provider: ProviderFactory
) -> None:
    """A half-time Beatport BPM is served as-is but with lowered confidence."""
    t = next(
        x for x in sandbox.state.catalogue.tracks if x.overrides.get("beatport", {}).get("bpm")
    )
    result = _lookup(make_provider, sandbox, "beatport", _query(t, isrc=t.base["isrc"]))
    bpm = result.values["bpm"]
    assert bpm.value == float(t.overrides["beatport"]["bpm"])
    assert bpm.confidence < result.match_confidence


def test_spotify_unknown_track_is_not_found(
    sandbox: SandboxHandle, make_provider: ProviderFactory
) -> None:
    """A track Spotify does not know gives status not_found (not an error)."""
    t = next(x for x in sandbox.state.catalogue.tracks if not x.known_to("spotify"))
    result = _lookup(make_provider, sandbox, "spotify", _query(t))
    assert result.status == "not_found"


def test_spotify_audio_features_closed_keeps_identity(
    sandbox: SandboxHandle, make_provider: ProviderFactory
) -> None:
    """Audio features answer 403 by default: those fields are unavailable, identity fields found."""
    t = _track(sandbox)
    result = _lookup(make_provider, sandbox, "spotify", _query(t))
    assert result.status == "found"
    assert {"bpm", "key", "energy"} <= set(result.unavailable)
    assert result.values["spotify_id"].value == t.provider_id("spotify")
    assert "bpm" not in result.values


def test_bad_values_are_rejected_not_accepted(
    sandbox: SandboxHandle, make_provider: ProviderFactory
) -> None:
    """'141bpm' from GetSongBPM and 'H minor' from TIDAL land in rejected with a reason."""
    cat = sandbox.state.catalogue.tracks
    gsb = next(x for x in cat if x.overrides.get("getsongbpm", {}).get("bpm"))
    result = _lookup(make_provider, sandbox, "getsongbpm", _query(gsb))
    assert "bpm" in result.rejected and "bpm" not in result.values
    tidal = next(x for x in cat if x.overrides.get("tidal", {}).get("key"))
    result = _lookup(make_provider, sandbox, "tidal", _query(tidal, isrc=tidal.base["isrc"]))
    assert "key" in result.rejected and "key" not in result.values


def test_deezer_bpm_zero_is_unknown(sandbox: SandboxHandle, make_provider: ProviderFactory) -> None:
    """Deezer's bpm 0 means unknown: no value and no rejection."""
    t = next(
        x for x in sandbox.state.catalogue.tracks if x.overrides.get("deezer", {}).get("bpm") == "0"
    )
    result = _lookup(make_provider, sandbox, "deezer", _query(t))
    assert "bpm" not in result.values and "bpm" not in result.rejected


def test_acousticbrainz_by_mbid_and_disabled_without_url(
    sandbox: SandboxHandle, make_provider: ProviderFactory
) -> None:
    """AcousticBrainz serves bpm/key by MBID, and is unavailable when no base URL is set."""
    t = _track(sandbox)
    q = _query(t, provider_ids={"musicbrainz": t.provider_id("musicbrainz")})
    result = _lookup(make_provider, sandbox, "acousticbrainz", q)
    assert result.values["key"].value == t.base["key"]
    disabled = make_provider("acousticbrainz", {}).lookup(q, ["bpm"])
    assert disabled.status == "unavailable"


def test_credentials_never_stored(sandbox: SandboxHandle, make_provider: ProviderFactory) -> None:
    """Raw responses carry no client secret, api key or bearer token."""
    t = _track(sandbox)
    dumped = ""
    for name in ("spotify", "lastfm", "discogs", "getsongbpm", "tidal"):
        result = _lookup(make_provider, sandbox, name, _query(t))
        dumped += json.dumps([r.__repr__() for r in result.responses])
    assert "sandbox-key" not in dumped and "sandbox-secret" not in dumped
    assert "sandbox-token-" not in dumped


def test_provider_id_lookup_is_authoritative(
    sandbox: SandboxHandle, make_provider: ProviderFactory
) -> None:
    """A lookup by this provider's own id reports confidence 1.0 with one request."""
    t = _track(sandbox)
    q = _query(t, provider_ids={"deezer": t.provider_id("deezer")})
    result = make_provider("deezer", sandbox.env).lookup(q, ["bpm", "isrc"])
    assert result.match_confidence == 1.0 and len(result.responses) == 1
