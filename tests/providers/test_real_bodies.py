"""Clients against bodies in the real APIs' shapes (issue 14, item 5), with respx.

Shapes: ``/work/shared/reference/providers.md`` (Discogs search item ``{id, type, title: "Artist
- Title", year, genre, style, label, ...}`` and release ``{title, artists[{name, anv, join, id}],
labels[{name, catno, id}], tracklist[{position, type_, title, duration, artists?}]}``; Last.fm
``track.getInfo``; TIDAL JSON:API ``data``/``included``; MusicBrainz recording with
``artist-credit``). Names are real releases: Justice's album "†" (Ed Banger Records, 2007), whose
tracklist holds both "Phantom" and "Phantom Pt. II"; durations are illustrative. "Not On Label",
"Various" and "[unknown]" are the placeholders Discogs and MusicBrainz really use.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx

from pipeline.matching import TrackQuery
from pipeline.normalise.placeholders import is_placeholder
from providers.lastfm import is_placeholder_track
from providers.registry import configure_for_sandbox

from .conftest import ProviderFactory

BASE = "http://fake.test"
ENV = configure_for_sandbox(BASE)
TOKEN = {"access_token": "t", "token_type": "Bearer", "expires_in": 3600}

CROSS_TRACKS = [
    ("1", "Genesis", "3:54"), ("2", "Let There Be Light", "4:55"), ("3", "D.A.N.C.E.", "4:02"),
    ("4", "Newjack", "3:36"), ("5", "Phantom", "4:22"), ("6", "Phantom Pt. II", "3:22"),
    ("7", "Valentine", "2:52"), ("8", "Tthhee Ppaarrttyy", "4:03"), ("9", "DVNO", "3:55"),
]  # fmt: skip
CROSS_RELEASE: dict[str, Any] = {
    "id": 1049934,
    "title": "†",
    "artists": [{"name": "Justice", "anv": "", "join": "", "id": 61474}],
    "labels": [{"name": "Ed Banger Records", "catno": "ED 024", "id": 7713}],
    "genres": ["Electronic"],
    "styles": ["Electro", "Electro House"],
    "year": 2007,
    "released": "2007-06-11",
    "tracklist": [
        {"position": p, "type_": "track", "title": t, "duration": d} for p, t, d in CROSS_TRACKS
    ],
    "identifiers": [],
}
CROSS_ITEM = {
    "id": 1049934, "type": "release", "title": "Justice - †", "year": "2007",
    "genre": ["Electronic"], "style": ["Electro"], "label": ["Ed Banger Records"],
    "catno": "ED 024", "format": ["CD", "Album"], "country": "France", "barcode": [],
    "master_id": 33281, "resource_url": "https://api.discogs.com/releases/1049934",
    "uri": "/release/1049934", "thumb": "", "cover_image": "",
}  # fmt: skip
COMPILATION: dict[str, Any] = {
    "id": 4411, "title": "Club Classics Vol. 1",
    "artists": [{"name": "Various", "anv": "", "join": ",", "id": 194}],
    "labels": [{"name": "Not On Label", "catno": "none", "id": 750}],
    "genres": ["Electronic"], "styles": ["House"], "year": 2001, "released": "2001-00-00",
    "tracklist": [
        {"position": "A", "type_": "track", "title": "Show Me Love", "duration": "",
         "artists": [{"name": "Robin S.", "anv": "", "join": "", "id": 20451}]},
        {"position": "B", "type_": "track", "title": "Hideaway", "duration": "6:55",
         "artists": [{"name": "De'Lacy", "anv": "", "join": "", "id": 28011}]},
    ],
}  # fmt: skip


@respx.mock
def test_discogs_finds_a_track_that_is_not_its_releases_title(
    make_provider: ProviderFactory,
) -> None:
    """The search item names the album ("Justice - †"); the client reads the release's tracklist
    and takes "Phantom Pt. II", not "Phantom"; the release's values are extracted."""
    search = respx.get(f"{BASE}/discogs/database/search").respond(
        json={"pagination": {"page": 1, "pages": 1, "items": 1}, "results": [CROSS_ITEM]}
    )
    release = respx.get(f"{BASE}/discogs/releases/1049934").respond(json=CROSS_RELEASE)
    q = TrackQuery("Justice", "Phantom Pt. II")
    result = make_provider("discogs", ENV).lookup(q, ["discogs_id", "label", "artist_name"])
    assert result.status == "found" and result.match_confidence >= 0.9
    assert result.values["discogs_id"].value == "1049934"
    assert result.values["label"].value == "Ed Banger Records"
    assert result.values["artist_name"].value == "Justice"
    assert search.call_count == 1 and release.call_count == 1  # one release read, reused
    assert search.calls[0].request.url.params["track"] == "Phantom Pt. II"


@respx.mock
def test_discogs_compilation_takes_the_tracks_artist_and_refuses_placeholders(
    make_provider: ProviderFactory,
) -> None:
    """On a compilation ("Various", "Not On Label") the entry's own artists are the artist; the
    label placeholder is rejected with a reason, never a value."""
    item = {**CROSS_ITEM, "id": 4411, "title": "Various - Club Classics Vol. 1"}
    respx.get(f"{BASE}/discogs/database/search").respond(json={"results": [item]})
    respx.get(f"{BASE}/discogs/releases/4411").respond(json=COMPILATION)
    q = TrackQuery("De'Lacy", "Hideaway")
    result = make_provider("discogs", ENV).lookup(q, ["artist_name", "label", "release_date"])
    assert result.status == "found"
    assert result.values["artist_name"].value == "De'Lacy"
    assert "label" not in result.values and "placeholder" in result.rejected["label"]
    assert result.values["release_date"].value == "2001"


@respx.mock
def test_discogs_release_without_the_track_is_not_found(make_provider: ProviderFactory) -> None:
    """A release that does not list the track (only its namesake) is no match: the first three
    results are read, then nothing is reported."""
    items = [{**CROSS_ITEM, "id": 1049934 + i} for i in range(5)]
    respx.get(f"{BASE}/discogs/database/search").respond(json={"results": items})
    releases = respx.get(url__regex=rf"{BASE}/discogs/releases/\d+").respond(json=CROSS_RELEASE)
    q = TrackQuery("Justice", "Phantom Pt. III")
    result = make_provider("discogs", ENV).lookup(q, ["discogs_id"])
    assert result.status == "not_found"
    assert releases.call_count == 3


@respx.mock
def test_discogs_release_id_is_checked_against_its_tracklist(
    make_provider: ProviderFactory,
) -> None:
    """A scraped Discogs id names the album: the track is on its tracklist, so the id holds
    (1.0, one request, no search); a track the album does not list makes the id stale."""
    release = respx.get(f"{BASE}/discogs/releases/1049934").respond(json=CROSS_RELEASE)
    search = respx.get(f"{BASE}/discogs/database/search").respond(json={"results": []})
    ids = {"discogs": "1049934"}
    on_it = make_provider("discogs", ENV).lookup(
        TrackQuery("Justice", "Phantom Pt. II", provider_ids=ids), ["discogs_id", "label"]
    )
    assert on_it.match_confidence == 1.0 and on_it.replaced_id is None
    assert release.call_count == 1 and search.call_count == 0
    off_it = make_provider("discogs", ENV).lookup(
        TrackQuery("Justice", "Audio, Video, Disco", provider_ids=ids), ["discogs_id"]
    )
    assert off_it.status == "not_found" and search.call_count == 1
    assert off_it.replaced_id is not None and "names another track" in off_it.replaced_id["reason"]


LASTFM_PLACEHOLDER = {
    "track": {
        "name": "Phantom Pt. III",
        "url": "https://www.last.fm/music/Justice/_/Phantom+Pt.+III",
        "duration": "0",
        "streamable": {"#text": "0", "fulltrack": "0"},
        "listeners": "2",
        "playcount": "3",
        "artist": {"name": "Justice", "mbid": "", "url": "https://www.last.fm/music/Justice"},
        "toptags": {"tag": []},
    }
}
LASTFM_REAL = {
    "track": {
        "name": "Phantom Pt. II",
        "url": "https://www.last.fm/music/Justice/_/Phantom+Pt.+II",
        "duration": "0",  # Last.fm often lacks a length even for well-known tracks
        "listeners": "301245",
        "playcount": "2207311",
        "artist": {"name": "Justice", "url": "https://www.last.fm/music/Justice"},
        "toptags": {"tag": [{"name": "electro", "url": "x"}, {"name": "french", "url": "y"}]},
    }
}


@respx.mock
def test_lastfm_placeholder_is_not_found(make_provider: ProviderFactory) -> None:
    """No mbid, duration "0", a play count of 3: Last.fm echoing the request, not a track."""
    respx.get(f"{BASE}/lastfm/2.0/").respond(json=LASTFM_PLACEHOLDER)
    q = TrackQuery("Justice", "Phantom Pt. III")
    result = make_provider("lastfm", ENV).lookup(q, ["genre"])
    assert result.status == "not_found" and not result.values


@respx.mock
def test_lastfm_real_track_without_mbid_is_found(make_provider: ProviderFactory) -> None:
    """A known track with no mbid and no duration still counts: two million plays."""
    respx.get(f"{BASE}/lastfm/2.0/").respond(json=LASTFM_REAL)
    q = TrackQuery("Justice", "Phantom Pt. II")
    result = make_provider("lastfm", ENV).lookup(q, ["genre", "play_count"])
    assert result.status == "found" and result.values["play_count"].value == 2207311


@pytest.mark.parametrize(
    ("track", "expected"),
    [
        (LASTFM_PLACEHOLDER["track"], True),
        (LASTFM_REAL["track"], False),
        ({**LASTFM_PLACEHOLDER["track"], "mbid": "0b1f4f1e-6e0b-4e6a-9d8d-0d9c3e1d6c6a"}, False),
        ({**LASTFM_PLACEHOLDER["track"], "duration": "222000"}, False),
        ({**LASTFM_PLACEHOLDER["track"], "playcount": "many"}, False),
    ],
)
def test_lastfm_placeholder_rule(track: dict[str, Any], expected: bool) -> None:
    """All three signs are needed; an mbid, a duration or real listening make a track."""
    assert is_placeholder_track(track) is expected


def _tidal_track(tid: str, title: str, artist_id: str) -> dict[str, Any]:
    return {
        "id": tid,
        "type": "tracks",
        "attributes": {"title": title, "isrc": "FR0NT0700013", "duration": "PT3M22S",
                       "bpm": 112.0, "key": "FSharp", "keyScale": "MINOR"},
        "relationships": {"artists": {"data": [{"id": artist_id, "type": "artists"}]}},
    }  # fmt: skip


@respx.mock
def test_tidal_list_filter_repeats_the_parameter(make_provider: ProviderFactory) -> None:
    """The search's track ids go to /tracks as filter[id]=a&filter[id]=b (the SDK's form), not
    one comma-joined value."""
    respx.post(url__regex=r".*/oauth2/token").respond(json=TOKEN)
    respx.get(url__regex=rf"{BASE}/tidal/v2/searchResults/.*").respond(
        json={
            "data": {
                "id": "Justice Phantom Pt. II",
                "type": "searchResults",
                "relationships": {
                    "tracks": {"data": [{"id": "77640617", "type": "tracks"},
                                        {"id": "77640618", "type": "tracks"}]}
                },
            }
        }
    )  # fmt: skip
    tracks = respx.get(f"{BASE}/tidal/v2/tracks").respond(
        json={
            "data": [
                _tidal_track("77640617", "Phantom Pt. II", "3656434"),
                _tidal_track("77640618", "Phantom", "3656434"),
            ],
            "included": [{"id": "3656434", "type": "artists", "attributes": {"name": "Justice"}}],
        }
    )
    q = TrackQuery("Justice", "Phantom Pt. II")
    result = make_provider("tidal", ENV).lookup(q, ["tidal_id", "bpm"])
    params = tracks.calls[0].request.url.params
    assert params.get_list("filter[id]") == ["77640617", "77640618"]
    assert "," not in str(tracks.calls[0].request.url.query)
    assert result.values["tidal_id"].value == "77640617"


@respx.mock
def test_musicbrainz_unknown_artist_is_never_a_value(make_provider: ProviderFactory) -> None:
    """A recording found by ISRC but credited to MusicBrainz's "[unknown]" artist: the artist
    is rejected, the identifiers are kept."""
    recording = {
        "id": "5a3a6a65-03b0-4c52-8f37-5e0f7c2c0d5e", "title": "Phantom Pt. II",
        "length": 202000, "isrcs": ["FR0NT0700013"],
        "artist-credit": [{"name": "[unknown]", "joinphrase": "",
                           "artist": {"id": "125ec42a-7229-4250-afc5-e057484327fe",
                                      "name": "[unknown]"}}],
        "releases": [{"id": "r", "title": "†", "date": "2007-06-11"}],
    }  # fmt: skip
    respx.get(url__regex=rf"{BASE}/musicbrainz/ws/2/isrc/.*").respond(
        json={"isrc": "FR0NT0700013", "recordings": [recording]}
    )
    q = TrackQuery("Justice", "Phantom Pt. II", isrc="FR0NT0700013")
    result = make_provider("musicbrainz", ENV).lookup(q, ["musicbrainz_id", "artist_name"])
    assert result.values["musicbrainz_id"].value == recording["id"]
    assert "artist_name" not in result.values
    assert "placeholder" in result.rejected["artist_name"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Not On Label", True), ("Not On Label (Justice Self-released)", True),
        ("Various Artists", True), ("VARIOUS", True), ("[unknown]", True), ("V.A.", True),
        ("Various Production", False), ("Unknown Mortal Orchestra", False),
        ("Ed Banger Records", False), ("Label", False),
    ],
)  # fmt: skip
def test_placeholder_names(name: str, expected: bool) -> None:
    """Placeholders are recognised in their real spellings; real names containing the words
    are not."""
    assert is_placeholder(name) is expected


def test_httpx_sends_a_list_param_repeated() -> None:
    """What the TIDAL client relies on: a list value is sent once per item."""
    url = httpx.Request("GET", "http://x.test/t", params={"filter[id]": ["1", "2"]}).url
    assert str(url) == "http://x.test/t?filter%5Bid%5D=1&filter%5Bid%5D=2"


def test_sandbox_discogs_serves_a_track_on_a_release_of_another_name(
    tmp_path: Any, make_provider: ProviderFactory
) -> None:
    """``discogs.release_title`` puts the track second on a release named otherwise (as the
    real catalogue does); the client still finds it, by the tracklist."""
    from providers.sandbox import start_in_thread

    path = tmp_path / "c.csv"
    path.write_text(
        "artist,title,label,release_date,discogs.release_title\n"
        "Justice,Phantom Pt. II,Ed Banger Records,2007-06-11,†\n",
        encoding="utf-8",
    )
    handle = start_in_thread(path)
    try:
        result = make_provider("discogs", handle.env).lookup(
            TrackQuery("Justice", "Phantom Pt. II"), ["discogs_id", "label"]
        )
        search = next(r for r in result.responses if "/database/search" in r.endpoint)
    finally:
        handle.stop()
    assert search.body["results"][0]["title"] == "Justice - †"
    assert result.status == "found" and result.values["label"].value == "Ed Banger Records"


def test_sandbox_lastfm_placeholder_is_not_found(
    tmp_path: Any, make_provider: ProviderFactory
) -> None:
    """``lastfm.placeholder=1``: the sandbox answers Last.fm's placeholder; the client says
    not_found while a neighbouring real row is found."""
    from providers.sandbox import start_in_thread

    path = tmp_path / "c.csv"
    path.write_text(
        "artist,title,duration_ms,genre,lastfm.placeholder\n"
        "Justice,Phantom Pt. III,,electro,1\nJustice,Phantom Pt. II,202000,electro,\n",
        encoding="utf-8",
    )
    handle = start_in_thread(path)
    try:
        lastfm = make_provider("lastfm", handle.env)
        fake = lastfm.lookup(TrackQuery("Justice", "Phantom Pt. III"), ["genre"])
        real = lastfm.lookup(TrackQuery("Justice", "Phantom Pt. II"), ["play_count"])
    finally:
        handle.stop()
    assert fake.status == "not_found"
    assert fake.responses[0].body["track"]["playcount"] == "3"
    assert real.status == "found"
