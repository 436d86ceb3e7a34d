"""Camelot wheel arithmetic: compatible keys, distances, transition scores."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.camelot import (
    compatible_keys,
    is_compatible,
    key_distance,
    key_family,
    transition_score,
)
from pipeline.normalise.errors import InvalidValue
from pipeline.normalise.keys import ALL_KEYS

keys = st.sampled_from(ALL_KEYS)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("8A", ["8A", "7A", "9A", "8B"]),
        ("8B", ["8B", "7B", "9B", "8A"]),
        ("1A", ["1A", "12A", "2A", "1B"]),
        ("12B", ["12B", "11B", "1B", "12A"]),
        ("A minor", ["8A", "7A", "9A", "8B"]),
        ("1d", ["8B", "7B", "9B", "8A"]),
    ],
)
def test_compatible_keys_order_and_wrap(key: str, expected: list[str]) -> None:
    """compatible_keys follows the SQL rule and order, wrapping 12 <-> 1, for any spelling."""
    assert compatible_keys(key) == expected


@given(keys)
def test_compatible_keys_are_four_distinct_valid_keys(key: str) -> None:
    """Every key has exactly four distinct valid compatible keys, itself first."""
    result = compatible_keys(key)
    assert len(set(result)) == 4
    assert result[0] == key
    assert set(result) <= set(ALL_KEYS)


@given(keys, keys)
def test_compatibility_is_symmetric_and_matches_distance(a: str, b: str) -> None:
    """is_compatible is symmetric and equals 'distance at most 1' and membership in the list."""
    assert is_compatible(a, b) == is_compatible(b, a)
    assert is_compatible(a, b) == (key_distance(a, b) <= 1) == (b in compatible_keys(a))


@given(keys, keys)
def test_transition_score_in_unit_interval(a: str, b: str) -> None:
    """Scores stay in [0, 1] and are 1.0 exactly for compatible keys."""
    score = transition_score(a, b)
    assert 0.0 <= score <= 1.0
    assert (score == 1.0) == is_compatible(a, b)


def test_distances_and_scores_fall_off() -> None:
    """Same key is 0 steps, relative 1, diagonal 2, the far side of the wheel the most."""
    assert key_distance("8A", "Am") == 0
    assert key_distance("8A", "8B") == 1
    assert key_distance("8A", "9B") == 2
    assert key_distance("8A", "2B") == 7
    assert (
        transition_score("8A", "9B") > transition_score("8A", "11A") > transition_score("8A", "2B")
    )


def test_key_family() -> None:
    """A ring is minor, B ring is major, whatever the spelling."""
    assert key_family("F♯ minor") == "minor"
    assert key_family("Db") == "major"


@pytest.mark.parametrize("bad", ["H minor", "13A", "", None, 8, ["8A"], "'; DROP TABLE x; --"])
def test_invalid_keys_raise_invalid_value(bad: object) -> None:
    """Garbage keys raise InvalidValue, never another exception."""
    with pytest.raises(InvalidValue):
        compatible_keys(bad)
