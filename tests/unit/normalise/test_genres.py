"""Genre vocabulary built from the Beatport chart slugs."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.normalise.errors import InvalidValue
from pipeline.normalise.genres import CANONICAL_GENRES, genre_for_chart_slug, normalise_genres

CSV_PATH = Path(__file__).parents[3] / "pipeline" / "data" / "beatport_top100_2025-10-29.csv"


def chart_slugs() -> list[str]:
    with CSV_PATH.open(newline="", encoding="utf-8") as handle:
        return sorted({row["genre"] for row in csv.DictReader(handle)})


def test_every_chart_slug_has_a_canonical_genre() -> None:
    """All 35 slugs in the CSV map to a distinct, lower-case canonical genre; the vocabulary
    adds only Beatport's hip-hop (no chart in the sample, needed for tempo plausibility)."""
    slugs = chart_slugs()
    assert len(slugs) == 35
    mapped = [genre_for_chart_slug(slug) for slug in slugs]
    assert len(set(mapped)) == 35
    assert sorted(set(CANONICAL_GENRES) - set(mapped)) == ["hip-hop"]
    assert all(g == g.lower() for g in CANONICAL_GENRES)
    assert normalise_genres(["Hip Hop", "rap", "seen live"]) == ["hip-hop"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Techno (Peak Time / Driving)", ["techno"]),  # Beatport name
        ("Techno (Raw / Deep / Hypnotic)", ["hypnotic techno"]),
        ("Melodic House & Techno", ["melodic house & techno"]),
        ("Drum & Bass", ["drum & bass"]),
        (["dnb", "Drum and Bass", "drum'n'bass", "D&B"], ["drum & bass"]),  # Last.fm tags
        (["Electronic", "Tech House"], ["electronica", "tech house"]),  # Discogs genre + style
        (["techhouse", "seen live", "favorites"], ["tech house"]),
        (["deep house", "german techno"], ["deep house", "techno"]),  # Spotify artist genres
        ([{"id": 113, "name": "Dance"}], ["dance pop"]),  # Deezer album genre objects
        ("Psy-Trance", ["psytrance"]),
        ("UK Garage / Bassline", ["uk garage"]),
        ("House, Techno; seen live", ["house", "techno"]),
        ("140 / Deep Dubstep / Grime", ["deep dubstep & grime"]),
        (["House", "house", "HOUSE"], ["house"]),
        (["Trance", "Afro House", "trance"], ["trance", "afro house"]),
        ([], []),
        ("rock", []),
        ("'; DROP TABLE x; --", []),
        ("\u202eHouse", ["house"]),
        ("Téchno", ["techno"]),
        ("🎵", []),
    ],
)
def test_normalise_genres(raw: object, expected: list[str]) -> None:
    """Provider spellings map to the vocabulary; order kept, duplicates and unknowns dropped."""
    assert normalise_genres(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [None, 1, True, b"house", {"name": "house"}, ["house", None], ["house", 3], ["x"] * 1000],
    ids=lambda v: repr(v)[:30],
)
def test_normalise_genres_rejects_wrong_types(raw: object) -> None:
    """Non-string containers, non-string tags and absurd lists raise InvalidValue."""
    with pytest.raises(InvalidValue):
        normalise_genres(raw)


def test_unknown_slug_raises() -> None:
    """genre_for_chart_slug refuses slugs that are not in the chart list."""
    with pytest.raises(InvalidValue):
        genre_for_chart_slug("polka")


@given(st.lists(st.one_of(st.sampled_from(CANONICAL_GENRES), st.text(max_size=20)), max_size=10))
def test_output_is_canonical_and_idempotent(tags: list[str]) -> None:
    """Results are canonical, unique, and normalising them again changes nothing."""
    result = normalise_genres(tags)
    assert set(result) <= set(CANONICAL_GENRES)
    assert len(result) == len(set(result))
    assert normalise_genres(result) == result
