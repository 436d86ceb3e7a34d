"""BPM parsing, half/double-time reconciliation and consensus."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.normalise.bpm import consensus_bpm, parse_bpm, reconcile_bpm, same_tempo
from pipeline.normalise.errors import InvalidValue


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (128, 128.0),
        (123.456, 123.46),
        ("128.00", 128.0),
        (" 128 ", 128.0),
        ("174", 174.0),
        (20, 20.0),
        (300, 300.0),
        ("68", 68.0),
        ("１２８", 128.0),
        ("١٢٨", 128.0),
        (0, None),
        ("0", None),
        (0.0, None),
    ],
)
def test_parse_bpm_accepts_numbers_and_numeric_strings(raw: object, expected: float | None) -> None:
    """Ints, floats and numeric strings parse to a 2-decimal float; 0 means unknown."""
    assert parse_bpm(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        True,
        False,
        math.nan,
        math.inf,
        -math.inf,
        -128,
        "-128",
        19.99,
        300.01,
        1e9,
        "128bpm",
        "128 BPM",
        "1,28",
        "",
        "  ",
        "abc",
        "12 8",
        None,
        [128],
        {"bpm": 128},
        b"128",
        "128\x00",
        "'; DROP TABLE x; --",
        "x" * 100_000,
    ],
    ids=repr,
)
def test_parse_bpm_rejects_garbage(raw: object) -> None:
    """Booleans, NaN/inf, negatives, out-of-range values, units and junk raise InvalidValue."""
    with pytest.raises(InvalidValue) as info:
        parse_bpm(raw)
    assert info.value.field == "bpm" and info.value.reason


def test_reconcile_bpm_picks_the_octave_nearest_the_reference() -> None:
    """A half-time Beatport reading is doubled to meet the reference; in-range only."""
    assert reconcile_bpm(68, 136) == 136.0
    assert reconcile_bpm(174, 87) == 87.0
    assert reconcile_bpm(128, 127) == 128.0
    assert reconcile_bpm(290, 140) == 145.0
    assert reconcile_bpm(25, 60) == 50.0


def test_same_tempo_is_half_double_aware() -> None:
    """Equal within tolerance directly or at half/double time; otherwise not."""
    assert same_tempo(128, 128)
    assert same_tempo(128, 130)
    assert not same_tempo(128, 134)
    assert same_tempo(87, 174)
    assert same_tempo(174, 86)
    assert not same_tempo(120, 128)
    assert same_tempo(120, 128, tolerance_pct=7)


def test_consensus_bpm_folds_outliers_onto_the_majority() -> None:
    """The median is taken after half/double readings join the majority tempo."""
    assert consensus_bpm([128, 64, 128.5, 127.8]) == 128.0
    assert consensus_bpm([174, 87, 174]) == 174.0
    assert consensus_bpm([68, 136]) == 136.0  # tie: the typical DJ tempo wins
    assert consensus_bpm([]) is None
    assert consensus_bpm([0, None]) is None


@given(st.floats(min_value=20, max_value=300))
def test_parse_bpm_is_idempotent(value: float) -> None:
    """Parsing a parsed value (or its string form) gives the same value."""
    parsed = parse_bpm(value)
    assert parsed is not None
    assert parse_bpm(parsed) == parsed == parse_bpm(str(parsed))


@given(st.floats(min_value=20, max_value=300), st.floats(min_value=20, max_value=300))
def test_reconciled_value_is_an_octave_in_range(value: float, reference: float) -> None:
    """reconcile_bpm returns value, 2x or x/2, always inside [20, 300]."""
    result = reconcile_bpm(value, reference)
    assert 20 <= result <= 300
    assert any(math.isclose(result, round(value * f, 2)) for f in (1, 2, 0.5))


@given(
    st.one_of(
        st.text(max_size=40),
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.lists(st.integers(), max_size=3),
        st.binary(max_size=8),
    )
)
def test_parse_bpm_never_raises_anything_else(value: object) -> None:
    """Any input yields None, a float in range, or InvalidValue."""
    try:
        result = parse_bpm(value)
    except InvalidValue:
        return
    assert result is None or 20 <= result <= 300
