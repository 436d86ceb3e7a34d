"""Key parsing: all 24 keys in every provider spelling, plus refusals."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.normalise.errors import InvalidValue
from pipeline.normalise.keys import (
    ALL_KEYS,
    camelot_to_open_key,
    camelot_to_pitch_class,
    from_pitch_class,
    key_name,
    to_camelot,
    try_camelot,
)

# Camelot code -> (sharp spelling, flat spelling or None, pitch class, open key)
TABLE: dict[str, tuple[str, str | None, int, str]] = {
    "1A": ("G#", "Ab", 8, "6m"),
    "2A": ("D#", "Eb", 3, "7m"),
    "3A": ("A#", "Bb", 10, "8m"),
    "4A": ("F", None, 5, "9m"),
    "5A": ("C", None, 0, "10m"),
    "6A": ("G", None, 7, "11m"),
    "7A": ("D", None, 2, "12m"),
    "8A": ("A", None, 9, "1m"),
    "9A": ("E", None, 4, "2m"),
    "10A": ("B", None, 11, "3m"),
    "11A": ("F#", "Gb", 6, "4m"),
    "12A": ("C#", "Db", 1, "5m"),
    "1B": ("B", None, 11, "6d"),
    "2B": ("F#", "Gb", 6, "7d"),
    "3B": ("C#", "Db", 1, "8d"),
    "4B": ("G#", "Ab", 8, "9d"),
    "5B": ("D#", "Eb", 3, "10d"),
    "6B": ("A#", "Bb", 10, "11d"),
    "7B": ("F", None, 5, "12d"),
    "8B": ("C", None, 0, "1d"),
    "9B": ("G", None, 7, "2d"),
    "10B": ("D", None, 2, "3d"),
    "11B": ("A", None, 9, "4d"),
    "12B": ("E", None, 4, "5d"),
}


def spellings(code: str) -> list[object]:
    """Every spelling we claim to parse for one Camelot code."""
    sharp, flat, pitch_class, open_key = TABLE[code]
    minor = code.endswith("A")
    number, letter = int(code[:-1]), code[-1]
    mode_word = "minor" if minor else "major"
    notes = [sharp, sharp.replace("#", "♯")] + ([flat, flat.replace("b", "♭")] if flat else [])
    out: list[object] = [
        code,
        code.lower(),
        f" {number:02d}{letter.lower()} ",
        f"{number} {letter}",
        open_key,
        open_key.upper(),
        (pitch_class, 0 if minor else 1),
        {"key": pitch_class, "mode": 0 if minor else 1},
        {
            "name": f"{sharp} {mode_word.title()}",
            "camelot_number": number,
            "camelot_letter": letter,
        },
        {"camelot_number": number, "camelot_letter": letter},
        {"key_key": sharp, "key_scale": mode_word},
        {"key_of": f"{sharp}m" if minor else sharp, "open_key": open_key},
        (sharp.replace("#", "Sharp"), mode_word.upper()),
        {"key": sharp.replace("#", "Sharp"), "keyScale": mode_word.upper()},
    ]
    for note in notes:
        out += [f"{note} {mode_word}", f"{note} {mode_word.upper()}", f"{note}{mode_word[:3]}"]
        out += [f"{note}m" if minor else note, f"{note}-{mode_word}"]
    return out


CASES = [(code, spelling) for code in TABLE for spelling in spellings(code)]


@pytest.mark.parametrize(("code", "spelling"), CASES, ids=[repr(s) for _, s in CASES])
def test_every_spelling_of_every_key(code: str, spelling: object) -> None:
    """Each of the 24 keys parses from Camelot, Open Key, names, ♯/♭ and provider objects."""
    assert to_camelot(spelling) == code


def test_table_covers_the_whole_wheel() -> None:
    """The test table holds all 24 codes, so no key is left untested."""
    assert set(TABLE) == set(ALL_KEYS)


@pytest.mark.parametrize(
    ("spelling", "code"),
    [
        ("E#", "7B"),  # = F major
        ("Fb", "12B"),  # = E major
        ("Cb minor", "10A"),  # = B minor
        ("B#", "8B"),  # = C major
        ("E# minor", "4A"),
        ("Bbm", "3A"),
        ("Abm", "1A"),
        ("C♯m", "12A"),
        ("Em", "9A"),
        ("2m", "9A"),
        ("１２Ａ", "12A"),  # fullwidth
        ("CSharp", "3B"),
        ("A Minor.", "8A"),
    ],
)
def test_enharmonic_and_provider_specific_spellings(spelling: str, code: str) -> None:
    """Enharmonics resolve by pitch class; Tidal/GetSongBPM/fullwidth spellings work."""
    assert to_camelot(spelling) == code


@pytest.mark.parametrize(
    "bad",
    [
        "H minor",  # German notation: we don't guess
        "Hm",
        "CM",  # ambiguous capital M
        "13A",
        "0A",
        "8C",
        "0m",
        "A dorian",
        "A moll",
        "As",
        "",
        "   ",
        "A\x00m",
        "x" * 10_000,
        "'; DROP TABLE x; --",
        "\u200fAm",
        "🎹",
        None,
        True,
        8,
        8.0,
        b"8A",
        ["8A"],
        (9, 0, 1),
        (12, 0),
        (9, 2),
        (True, 0),
        (-1, 0),
        {"key": -1, "mode": 1},
        {"key": "UNKNOWN", "keyScale": "MAJOR"},
        {"key": "A", "keyScale": "DORIAN"},
        {"name": "D Major", "camelot_number": 9, "camelot_letter": "B"},  # inconsistent
        {"camelot_number": 10, "camelot_letter": "C"},
        {"camelot_number": True, "camelot_letter": "A"},
        {"key_of": "Em", "open_key": "3m"},  # inconsistent
        {"key_key": "A"},  # no scale: unknown mode, not major
        {"foo": "bar"},
        {},
    ],
    ids=repr,
)
def test_invalid_keys_raise_invalid_value(bad: object) -> None:
    """Unknown, ambiguous, inconsistent or hostile keys raise InvalidValue with a reason."""
    with pytest.raises(InvalidValue) as info:
        to_camelot(bad)
    assert info.value.field == "key"
    assert info.value.reason
    assert try_camelot(bad) is None


def test_from_pitch_class() -> None:
    """Spotify pitch class + mode map onto Camelot; -1 means unknown."""
    assert from_pitch_class(9, 0) == "8A"
    assert from_pitch_class(0, 1) == "8B"
    assert from_pitch_class(-1, 1) is None
    with pytest.raises(InvalidValue):
        from_pitch_class(12, 1)


@pytest.mark.parametrize("code", ALL_KEYS)
def test_round_trips_through_other_notations(code: str) -> None:
    """Name, Open Key and pitch class of each code parse back to the same code."""
    assert to_camelot(key_name(code)) == code
    assert to_camelot(camelot_to_open_key(code)) == code
    assert from_pitch_class(*camelot_to_pitch_class(code)) == code


@given(st.text(max_size=30))
def test_arbitrary_text_never_raises_anything_else(text: str) -> None:
    """Arbitrary text parses to a valid code or raises InvalidValue, and parsing is idempotent."""
    try:
        code = to_camelot(text)
    except InvalidValue:
        return
    assert code in ALL_KEYS
    assert to_camelot(code) == code


@given(st.sampled_from([s for _, s in CASES]))
def test_to_camelot_is_idempotent(spelling: object) -> None:
    """to_camelot(to_camelot(x)) == to_camelot(x) for every supported spelling."""
    code = to_camelot(spelling)
    assert to_camelot(code) == code
