"""Scraper ids are hints, not truth (issue 14, item 4) and the sandbox catalogue may carry real
provider ids (item 6).

The catalogue here carries a ``spotify.id`` column. ``11dFghVXANMlKmJXsNCbNl`` is the track id of
the Spotify Web API reference's own "Get Track" example; the Beatport ids are numbers as Beatport
v4 serves them. Answers come from the sandbox in each API's shape (404 bodies as the APIs send
them; Spotify answers 400 "invalid id" for a string that is not an id).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.matching import TrackQuery
from providers.sandbox import SandboxHandle, start_in_thread
from providers.sandbox.catalogue import load_catalogue

from .conftest import ProviderFactory

REAL_SPOTIFY = "11dFghVXANMlKmJXsNCbNl"
CATALOGUE = f"""# test catalogue: names real, every value simulated
artist,title,isrc,duration_ms,bpm,key,genre,label,release_date,spotify.id,beatport.id
Justice,Phantom,FR0NT0700012,262000,122,8A,electro,Ed Banger,2007-06-11,{REAL_SPOTIFY},1200345
Justice,Genesis,FR0NT0700010,234000,120,5A,electro,Ed Banger,2007-06-11,,
Daft Punk,One More Time,GBDUW0000053,320000,123,4B,house,Virgin,2000-11-13,,
"""


@pytest.fixture(scope="module")
def real_id_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    path = tmp_path_factory.mktemp("catalogue") / "catalogue.csv"
    path.write_text(CATALOGUE, encoding="utf-8")
    handle = start_in_thread(path)
    yield handle
    handle.stop()


def test_real_ids_in_the_catalogue_resolve(
    real_id_sandbox: SandboxHandle, make_provider: ProviderFactory
) -> None:
    """A scraper row with the track's real Spotify and Beatport ids resolves by id at 1.0."""
    ids = {"spotify": REAL_SPOTIFY, "beatport": "1200345"}
    q = TrackQuery("Justice", "Phantom", provider_ids=ids)
    spotify = make_provider("spotify", real_id_sandbox.env).lookup(q, ["spotify_id", "isrc"])
    beatport = make_provider("beatport", real_id_sandbox.env).lookup(q, ["beatport_id", "bpm"])
    assert spotify.status == "found" and spotify.match_confidence == 1.0
    assert spotify.values["spotify_id"].value == REAL_SPOTIFY and spotify.replaced_id is None
    lookups = [r for r in spotify.responses if "/token" not in r.endpoint]
    assert len(lookups) == 1 and lookups[0].endpoint.endswith(REAL_SPOTIFY)
    assert beatport.values["beatport_id"].value == "1200345" and beatport.replaced_id is None
    # Search serves the real id too: a track found by name carries the id the catalogue holds.
    by_name = make_provider("spotify", real_id_sandbox.env).lookup(
        TrackQuery("Justice", "Phantom"), ["spotify_id"]
    )
    assert by_name.values["spotify_id"].value == REAL_SPOTIFY


@pytest.mark.parametrize(
    ("stale", "status", "reason"),
    [("4uLU6hMCjMI75M1A2tKUQC", 404, "HTTP 404"), ("not-an-id", 400, "HTTP 400")],
)
def test_unknown_id_falls_back_to_isrc(
    stale: str, status: int, reason: str, real_id_sandbox: SandboxHandle,
    make_provider: ProviderFactory,
) -> None:  # fmt: skip
    """An id answering 404 (or 400) is stale: the ISRC finds the track; the result records the
    stale id, why, and the replacement, which becomes the value."""
    q = TrackQuery("Justice", "Phantom", isrc="FR0NT0700012", provider_ids={"spotify": stale})
    result = make_provider("spotify", real_id_sandbox.env).lookup(q, ["spotify_id", "isrc"])
    assert result.status == "found"
    assert result.values["spotify_id"].value == REAL_SPOTIFY
    assert result.replaced_id == {
        "stale_id": stale,
        "reason": f"id lookup: {reason}" if status == 404 else f"id lookup rejected: {reason} "
        "(request rejected)",
        "replaced_by": REAL_SPOTIFY,
        "via": "isrc",
    }
    raw = result.values["spotify_id"].raw
    assert raw["replaces"]["stale_id"] == stale and raw["raw"] == REAL_SPOTIFY
    assert result.values["spotify_id"].confidence < 1.0  # matched, not an authoritative id
    lookups = [r for r in result.responses if "/token" not in r.endpoint]
    assert lookups[0].status_code == status and stale in lookups[0].endpoint  # kept


def test_id_of_another_track_falls_back_to_search(
    real_id_sandbox: SandboxHandle, make_provider: ProviderFactory
) -> None:
    """An id whose track is not the scraped artist and title (Genesis's id on a Phantom row) is
    dropped; search finds Phantom."""
    catalogue = real_id_sandbox.state.catalogue
    genesis = next(t for t in catalogue.tracks if t.base["title"] == "Genesis")
    q = TrackQuery("Justice", "Phantom", provider_ids={"spotify": genesis.provider_id("spotify")})
    result = make_provider("spotify", real_id_sandbox.env).lookup(q, ["spotify_id"])
    assert result.values["spotify_id"].value == REAL_SPOTIFY
    assert result.replaced_id is not None and result.replaced_id["via"] == "search"
    assert "Justice - Genesis" in result.replaced_id["reason"]


def test_stale_id_with_no_replacement_is_not_found_and_says_why(
    real_id_sandbox: SandboxHandle, make_provider: ProviderFactory
) -> None:
    """Nothing by ISRC or name either: not_found, and the id field's rejection names the id."""
    q = TrackQuery("Nobody", "Nothing Here", provider_ids={"beatport": "999999"})
    result = make_provider("beatport", real_id_sandbox.env).lookup(q, ["beatport_id", "bpm"])
    assert result.status == "not_found"
    assert result.replaced_id is not None and result.replaced_id["replaced_by"] is None
    assert "'999999'" in result.rejected["beatport_id"]
    lookups = [r for r in result.responses if "/token" not in r.endpoint]
    assert lookups[0].status_code == 404 and lookups[0].endpoint.endswith("/999999/")


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("spotify.id", "short", "22 base-62"),
        ("beatport.id", "abc", "digits"),
        ("musicbrainz.id", "not-a-uuid", "badly formed"),
    ],
)
def test_catalogue_rejects_malformed_real_ids(
    column: str, value: str, message: str, tmp_path: Path
) -> None:
    """A real-id column must hold the provider's id form; the error names the row."""
    path = tmp_path / "c.csv"
    path.write_text(f"artist,title,{column}\nA,B,{value}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_catalogue(path)


def test_catalogue_rejects_a_real_id_on_two_rows(tmp_path: Path) -> None:
    """Two rows cannot both be one provider's track."""
    path = tmp_path / "c.csv"
    path.write_text(f"artist,title,spotify.id\nA,B,{REAL_SPOTIFY}\nC,D,{REAL_SPOTIFY}\n", "utf-8")
    with pytest.raises(ValueError, match=r"rows 1 and 2 share spotify\.id"):
        load_catalogue(path)
