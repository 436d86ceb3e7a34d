"""Durations in milliseconds from every provider unit."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.normalise.durations import MAX_DURATION_MS, to_ms
from pipeline.normalise.errors import InvalidValue


@pytest.mark.parametrize(
    ("raw", "unit", "expected"),
    [
        (240000, "ms", 240000),
        ("240000", "ms", 240000),  # Last.fm
        (224, "s", 224000),  # Deezer
        ("224", "s", 224000),
        (224.5, "s", 224500),
        ("7:54", "clock", 474000),  # Discogs / Beatport length
        ("07:54", "clock", 474000),
        ("1:02:03", "clock", 3723000),
        ("62:03", "clock", 3723000),
        ("PT3M44S", "iso8601", 224000),  # TIDAL
        ("PT1H2M3.5S", "iso8601", 3723500),
        ("pt45s", "iso8601", 45000),
        (MAX_DURATION_MS, "ms", MAX_DURATION_MS),
    ],
)
def test_to_ms(raw: object, unit: str, expected: int) -> None:
    """Each unit converts to whole milliseconds."""
    assert to_ms(raw, unit) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "unit"),
    [
        ("", "clock"),  # Discogs empty duration
        ("7:60", "clock"),
        ("1:60:00", "clock"),
        ("7.54", "clock"),
        (474, "clock"),
        ("PT", "iso8601"),
        ("P", "iso8601"),
        ("3M44S", "iso8601"),
        ("PT5H", "iso8601"),  # longer than 4 h
        (0, "ms"),
        (0, "s"),
        ("0:00", "clock"),
        (-1, "ms"),
        ("-1", "ms"),
        (MAX_DURATION_MS + 1, "ms"),
        (True, "ms"),
        (None, "ms"),
        (float("nan"), "s"),
        (float("inf"), "s"),
        ("240000ms", "ms"),
        ("'; DROP TABLE x; --", "clock"),
        ("7:54\x00", "clock"),
        ([240000], "ms"),
        (240000, "minutes"),
        ("9" * 10_000, "ms"),
    ],
    ids=repr,
)
def test_to_ms_rejects(raw: object, unit: str) -> None:
    """Empty, malformed, zero, negative, over-4-hour and wrong-type durations raise."""
    with pytest.raises(InvalidValue) as info:
        to_ms(raw, unit)  # type: ignore[arg-type]
    assert info.value.field == "duration_ms"


@given(st.integers(min_value=1, max_value=4 * 3600 - 1))
def test_clock_and_iso_agree(seconds: int) -> None:
    """The same duration in clock, ISO 8601, seconds and ms gives the same result."""
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    clock = f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
    iso = f"PT{h}H{m}M{s}S"
    assert to_ms(clock, "clock") == to_ms(iso, "iso8601") == to_ms(seconds, "s")
    assert to_ms(str(seconds * 1000), "ms") == seconds * 1000


@given(
    st.one_of(st.text(max_size=30), st.integers(), st.floats(), st.none()),
    st.sampled_from(["ms", "s", "clock", "iso8601"]),
)
def test_never_raises_anything_else(value: object, unit: str) -> None:
    """Arbitrary input yields a duration in (0, 4 h] or InvalidValue."""
    try:
        result = to_ms(value, unit)  # type: ignore[arg-type]
    except InvalidValue:
        return
    assert 0 < result <= MAX_DURATION_MS
