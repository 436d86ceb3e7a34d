"""ISRC validation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.normalise.errors import InvalidValue
from pipeline.normalise.isrc import normalise_isrc, try_isrc


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("GBDUW0000059", "GBDUW0000059"),
        ("gb-duw-00-00059", "GBDUW0000059"),
        (" GB DUW 00 00059 ", "GBDUW0000059"),
        ("USRC17607839", "USRC17607839"),
        ("ＧＢＤＵＷ０００００５９", "GBDUW0000059"),
    ],
)
def test_normalise_isrc_accepts_display_forms(raw: str, expected: str) -> None:
    """Dashes, spaces, lower case and fullwidth forms normalise to 12 upper-case characters."""
    assert normalise_isrc(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "GBDUW000005",
        "GBDUW00000599",
        "G1DUW0000059",
        "GBDUW00000A9",
        "GBDUW0000059\x00",
        "'; DROP TABLE x; --",
        "GBDUW0000٠59",
        "GB_DUW0000059",
        None,
        12,
        True,
        ["GBDUW0000059"],
        "x" * 10_000,
    ],
    ids=repr,
)
def test_normalise_isrc_rejects_malformed(raw: object) -> None:
    """Wrong length, wrong character classes, non-strings and junk raise InvalidValue."""
    with pytest.raises(InvalidValue) as info:
        normalise_isrc(raw)
    assert info.value.field == "isrc"
    assert try_isrc(raw) is None


@given(st.from_regex(r"\A[A-Z]{2}[A-Z0-9]{3}[0-9]{7}\Z"))
def test_valid_isrcs_round_trip(isrc: str) -> None:
    """A canonical ISRC is a fixed point, also after dashing and lower-casing it."""
    dashed = f"{isrc[:2]}-{isrc[2:5]}-{isrc[5:7]}-{isrc[7:]}".lower()
    assert normalise_isrc(isrc) == isrc == normalise_isrc(dashed)


@given(st.text(max_size=30))
def test_normalise_isrc_never_raises_anything_else(text: str) -> None:
    """Arbitrary text is either a valid ISRC or InvalidValue."""
    try:
        result = normalise_isrc(text)
    except InvalidValue:
        return
    assert len(result) == 12 and normalise_isrc(result) == result
