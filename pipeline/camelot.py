"""Camelot wheel arithmetic for harmonic mixing.

Every function accepts any key spelling ``pipeline.normalise.keys.to_camelot`` understands and
raises ``InvalidValue`` for anything else. ``compatible_keys`` follows exactly the rule of the SQL
function ``calculate_compatible_keys`` (same key, one step down, one step up, relative
major/minor, wrapping 12 <-> 1) and in the same order, so Python and SQL recommendations agree.
"""

from __future__ import annotations

from typing import Any, Literal

from pipeline.normalise.keys import to_camelot

__all__ = [
    "compatible_keys",
    "is_compatible",
    "key_distance",
    "key_family",
    "transition_score",
]


def _split(key: Any) -> tuple[int, str]:
    code = to_camelot(key)
    return int(code[:-1]), code[-1]


def _wrap(number: int) -> int:
    return (number - 1) % 12 + 1


def compatible_keys(key: Any) -> list[str]:
    """``[nX, (n-1)X, (n+1)X, n(other letter)]`` for key ``nX``."""
    number, letter = _split(key)
    other = "B" if letter == "A" else "A"
    return [
        f"{number}{letter}",
        f"{_wrap(number - 1)}{letter}",
        f"{_wrap(number + 1)}{letter}",
        f"{number}{other}",
    ]


def key_distance(a: Any, b: Any) -> int:
    """Steps on the wheel: 0 same key, 1 adjacent or relative, up to 7 for the far side."""
    number_a, letter_a = _split(a)
    number_b, letter_b = _split(b)
    diff = abs(number_a - number_b) % 12
    steps = min(diff, 12 - diff)
    # Changing letter (minor <-> major) costs one step, like moving to the inner/outer ring.
    return steps + (0 if letter_a == letter_b else 1)


def is_compatible(a: Any, b: Any) -> bool:
    """True when ``b`` is one of ``compatible_keys(a)`` (the relation is symmetric)."""
    return key_distance(a, b) <= 1


def transition_score(a: Any, b: Any) -> float:
    """Harmonic flow from ``a`` to ``b`` in [0, 1]: 1.0 for compatible keys, 0.2 less per step."""
    distance = key_distance(a, b)
    if distance <= 1:
        return 1.0
    return round(max(0.0, 1.0 - 0.2 * (distance - 1)), 2)


def key_family(key: Any) -> Literal["minor", "major"]:
    """``"minor"`` for the A ring, ``"major"`` for the B ring."""
    return "minor" if _split(key)[1] == "A" else "major"
