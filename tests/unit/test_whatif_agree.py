"""pipeline.whatif.agree: when two providers' values agree, and the consensus of the others."""

from __future__ import annotations

import pytest

from pipeline.whatif.agree import consensus_agrees, same_value


@pytest.mark.parametrize(
    ("field", "a", "b", "same"),
    [
        ("bpm", 128.0, 128.5, True),  # within 2 %
        ("bpm", 128.0, 64.0, False),  # half time is a disagreement worth seeing
        ("energy", 0.71, 0.75, True),
        ("energy", 0.6, 0.7, False),
        ("duration_ms", 200_000, 201_500, True),
        ("duration_ms", 200_000, 205_000, False),
        ("genre", ["house", "tech house"], ["Tech House"], True),
        ("genre", ["house"], ["techno"], False),
        ("release_date", "2020", "2020-05-01", True),
        ("release_date", "2020-05-01", "2020-06-01", False),
        ("key", "8A", "8A", True),
        ("key", "8A", "8B", False),
        ("isrc", "GBAYE0601498", "gbaye0601498", True),
        ("artist_name", "Deadmau5", "deadmau5", True),
        ("bpm", None, 128.0, False),
    ],
)
def test_same_value(field: str, a: object, b: object, same: bool) -> None:
    assert same_value(field, a, b) is same


def test_consensus_is_the_largest_group_of_the_others() -> None:
    assert consensus_agrees("bpm", 128.0, [128.0, 127.9, 64.0]) is True
    assert consensus_agrees("bpm", 64.0, [128.0, 127.9, 64.0]) is False
    assert consensus_agrees("key", "8A", ["8A", "9A"]) is True  # a tie: any largest group
    assert consensus_agrees("key", "1A", ["8A", "9A"]) is False
    assert consensus_agrees("bpm", 128.0, []) is None  # nobody else answered: no evidence
