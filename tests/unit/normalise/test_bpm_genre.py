"""Tempo plausibility by genre (issue 14, item 7): pure functions and the merge's resolution.

The waterfall rows below are the seeded ``metadata_enrichment_config`` rows for bpm, genre and
artist_name (``db/migrations/medallion/004_waterfall_configuration_up.sql``).
"""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.merge import resolve_fields
from pipeline.normalise.bpm import TEMPO_RANGES, fold_to_genre, plausible_for
from pipeline.normalise.genres import CANONICAL_GENRES
from pipeline.waterfall import Outcome, plan_from_snapshot
from providers.contract import _doubt_factor


def test_every_genre_has_a_tempo_range() -> None:
    """No canonical genre is left without a range (else its tempo is never judged)."""
    assert set(TEMPO_RANGES) == set(CANONICAL_GENRES)
    assert all(20 <= lo < hi <= 300 for lo, hi in TEMPO_RANGES.values())


@pytest.mark.parametrize(
    ("bpm", "genres", "expected", "note"),
    [
        (75.0, ["downtempo"], 75.0, None),
        (75.0, ["hip-hop"], 75.0, None),
        (64.0, ["techno"], 128.0, "half-time reading for techno"),
        (86.0, ["drum & bass"], 172.0, "half-time"),
        (150.0, ["hip-hop"], 75.0, "double-time reading for hip-hop"),
        (70.0, ["deep dubstep & grime"], 140.0, "half-time"),
        (75.0, ["trap & future bass"], 75.0, None),  # played at both octaves: never folded
        (150.0, ["trap & future bass"], 150.0, None),
        (100.0, ["techno"], 100.0, "outside the usual techno tempo"),  # neither octave fits
        (64.0, None, 64.0, None),  # no genre, no opinion
        (64.0, ["rock"], 64.0, None),
        (64.0, ["techno", "downtempo"], 128.0, "half-time"),  # the primary genre decides
    ],
)
def test_fold_to_genre(
    bpm: float, genres: list[str] | None, expected: float, note: str | None
) -> None:
    """Inside the genre's range a reading stays; its half or double inside folds; else noted."""
    value, said = fold_to_genre(bpm, genres)
    assert value == expected
    assert (said is None) if note is None else (said is not None and note in said)


def test_provider_doubt_follows_the_genre_of_the_same_answer() -> None:
    """A 75 for downtempo is not doubted; a 64 for techno is; without a genre, under 80 is."""
    assert _doubt_factor("bpm", 75.0, ["downtempo"]) == 1.0
    assert _doubt_factor("bpm", 75.0, ["hip-hop"]) == 1.0
    assert _doubt_factor("bpm", 64.0, ["techno"]) == 0.7
    assert _doubt_factor("bpm", 128.0, ["techno"]) == 1.0
    assert _doubt_factor("bpm", 75.0, None) == 0.7
    assert _doubt_factor("bpm", 124.0, None) == 1.0
    assert plausible_for(75.0, ["downtempo"]) is True and plausible_for(75.0, None) is None


WATERFALL: list[dict[str, Any]] = [
    {"metadata_field": "bpm", "min_acceptable_confidence": 0.70, "required_for_gold": True,
     "priority_1_provider": "beatport", "priority_1_confidence": 0.98,
     "priority_2_provider": "spotify", "priority_2_confidence": 0.85,
     "priority_3_provider": "acousticbrainz", "priority_3_confidence": 0.75,
     "priority_4_provider": "mixesdb", "priority_4_confidence": 0.60},
    {"metadata_field": "genre", "min_acceptable_confidence": 0.60, "required_for_gold": True,
     "priority_1_provider": "beatport", "priority_1_confidence": 0.90,
     "priority_2_provider": "spotify", "priority_2_confidence": 0.85,
     "priority_3_provider": "lastfm", "priority_3_confidence": 0.70,
     "priority_4_provider": "discogs", "priority_4_confidence": 0.65},
    {"metadata_field": "artist_name", "min_acceptable_confidence": 0.70, "required_for_gold": True,
     "priority_1_provider": "spotify", "priority_1_confidence": 0.95,
     "priority_2_provider": "musicbrainz", "priority_2_confidence": 0.90,
     "priority_3_provider": "beatport", "priority_3_confidence": 0.85,
     "priority_4_provider": "1001tracklists", "priority_4_confidence": 0.70},
]  # fmt: skip
PLAN = plan_from_snapshot(WATERFALL, [])


def _resolve(*outcomes: Outcome) -> Any:
    return resolve_fields(PLAN, list(outcomes), {"bpm", "genre", "artist_name"}, "run")


def _bpm_warnings(resolution: Any) -> list[str]:
    return [w["warning"] for w in resolution.warnings if w["field"] == "bpm"]


def test_lone_downtempo_reading_is_kept_with_a_warning() -> None:
    """One provider, 75 BPM, doubted to 0.67 (under the 0.70 floor) by a genre-blind client:
    kept at 0.67 with a warning, not left empty, not doubled."""
    r = _resolve(
        Outcome("beatport", "bpm", 75.0, 0.665, True),
        Outcome("lastfm", "genre", ["downtempo"], 0.75, True),
    )
    assert r.values["bpm"] == 75.0 and r.confidences["bpm"] == 0.665
    (warning,) = _bpm_warnings(r)
    assert "kept beatport's 75 at 0.67" in warning and "the only reading" in warning


def test_lone_techno_half_time_reading_is_kept_at_full_tempo() -> None:
    """One provider reads a techno track at 64 (doubted to 0.67): stored 128, with a warning."""
    r = _resolve(
        Outcome("beatport", "bpm", 64.0, 0.665, True),
        Outcome("beatport", "genre", ["techno"], 0.95, True),
    )
    assert r.values["bpm"] == 128.0
    assert "half-time reading for techno" in _bpm_warnings(r)[0]


def test_accepted_techno_half_time_winner_is_folded() -> None:
    """An id-matched 64 (1.0 x 0.7 = 0.70 meets the fallback floor) for techno is half time."""
    r = _resolve(
        Outcome("beatport", "bpm", 64.0, 0.70, True),
        Outcome("beatport", "genre", ["techno"], 1.0, True),
    )
    assert r.values["bpm"] == 128.0 and r.confidences["bpm"] == 0.70
    assert any("half-time" in w for w in _bpm_warnings(r))


def test_hip_hop_at_75_is_not_doubled_by_double_time_readings() -> None:
    """Spotify and AcousticBrainz read 150 for a hip-hop track Beatport has at 75: stored 75."""
    r = _resolve(
        Outcome("beatport", "bpm", 75.0, 0.95, True),
        Outcome("spotify", "bpm", 150.0, 0.90, True),
        Outcome("acousticbrainz", "bpm", 150.0, 0.99, True),
        Outcome("beatport", "genre", ["hip-hop"], 0.95, True),
    )
    assert r.values["bpm"] == 75.0


def test_implausible_lone_reading_is_not_rescued() -> None:
    """Under the floor and implausible even at half or double (40 for techno): stays empty."""
    r = _resolve(
        Outcome("beatport", "bpm", 40.0, 0.665, True),
        Outcome("beatport", "genre", ["techno"], 0.95, True),
    )
    assert "bpm" not in r.values


def test_placeholder_artist_never_wins() -> None:
    """Spotify's "Various Artists" (0.99) loses to MusicBrainz's real credit (0.92)."""
    r = _resolve(
        Outcome("spotify", "artist_name", "Various Artists", 0.99, True),
        Outcome("musicbrainz", "artist_name", "Justice", 0.92, True),
    )
    assert r.values["artist_name"] == "Justice"
