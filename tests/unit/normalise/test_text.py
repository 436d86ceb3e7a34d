"""Free-text cleaning."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.normalise.errors import InvalidValue
from pipeline.normalise.text import MAX_TEXT_LENGTH, clean_text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Strobe  ", "Strobe"),
        ("Fred\tagain..\n", "Fred again.."),
        ("a\x00b", "ab"),
        ("RB\u00d8R", "RBØR"),
        ("Salome\u0301", "Salomé"),  # combining accent composed (NFC)
        ("\u202eevil\u202c", "evil"),  # bidi override stripped
        ("\u200fمرحبا\u200f", "مرحبا"),  # RTL letters kept, RLM stripped
        ("zero\u200bwidth", "zerowidth"),
        ("\ufeffBOM", "BOM"),
        ("👨\u200d👩\u200d👧 family", "👨\u200d👩\u200d👧 family"),  # ZWJ emoji sequence intact
        ("a\u00a0\u2003b", "a b"),
        ("'; DROP TABLE x; --", "'; DROP TABLE x; --"),  # text, not SQL: kept verbatim
        ("１２８", "１２８"),  # NFC, not NFKC: fullwidth is the artist's spelling
    ],
)
def test_clean_text(raw: str, expected: str) -> None:
    """Control and format characters go, real characters (RTL, emoji, accents) stay."""
    assert clean_text(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "\x00\x00",
        "\u200f\u202e",
        "x" * (MAX_TEXT_LENGTH + 1),
        "x " * 60_000,
        None,
        1,
        True,
        b"text",
        ["text"],
        {"t": 1},
    ],
    ids=lambda v: repr(v)[:30],
)
def test_clean_text_rejects(raw: object) -> None:
    """Empty-after-cleaning, too long and non-string values raise InvalidValue."""
    with pytest.raises(InvalidValue) as info:
        clean_text(raw)
    assert info.value.field == "text"


@given(st.text(max_size=200))
def test_clean_text_is_idempotent_and_clean(text: str) -> None:
    """Output is NFC, has no control/bidi characters or doubled spaces, and is a fixed point."""
    try:
        cleaned = clean_text(text)
    except InvalidValue:
        return
    assert clean_text(cleaned) == cleaned
    assert unicodedata.is_normalized("NFC", cleaned)
    assert "  " not in cleaned and cleaned == cleaned.strip()
    assert not any(unicodedata.category(ch) in ("Cc", "Cs") for ch in cleaned)
    assert not any(ch in cleaned for ch in "\u200e\u200f\u202a\u202b\u202c\u202d\u202e")
