"""Do two providers' values for a field say the same thing? And what do the others agree on?

Used to score a chosen value against the *consensus of the other providers* (and by the nightly
rollup's SQL counterpart, which compares with the chosen value). Tolerances are deliberately
plain (no half/double-time folding: a half-time BPM is a disagreement worth seeing).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipeline.matching import normalise_name

__all__ = ["consensus_agrees", "same_value"]

_UNIT_FIELDS = frozenset({"energy", "valence", "danceability"})
_TEXT_FIELDS = frozenset({"artist_name", "track_title", "label"})


def same_value(field: str, a: Any, b: Any) -> bool:
    """Whether ``a`` and ``b`` agree for ``field`` (numbers within a small tolerance, genre lists
    sharing a genre, dates agreeing to the coarser precision, ids and keys exactly)."""
    if a is None or b is None:
        return False
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        x, y = float(a), float(b)
        if field in _UNIT_FIELDS:
            return abs(x - y) <= 0.05
        if field == "duration_ms":
            return abs(x - y) <= 2000
        return abs(x - y) <= 0.02 * max(abs(x), abs(y), 1.0)
    if isinstance(a, list) or isinstance(b, list):
        xs = {str(v).casefold() for v in (a if isinstance(a, list) else [a])}
        ys = {str(v).casefold() for v in (b if isinstance(b, list) else [b])}
        return bool(xs & ys)
    sa, sb = str(a), str(b)
    if field == "release_date":
        n = min(len(sa), len(sb))
        return n >= 4 and sa[:n] == sb[:n]
    if field in _TEXT_FIELDS:
        return normalise_name(sa) == normalise_name(sb)
    return sa.casefold() == sb.casefold()


def consensus_agrees(field: str, chosen: Any, others: Sequence[Any]) -> bool | None:
    """Whether ``chosen`` agrees with the largest group of mutually agreeing ``others``
    (any of the largest when they tie); None when there are no others to judge by."""
    if not others:
        return None
    groups: list[list[Any]] = []
    for v in others:
        for g in groups:
            if same_value(field, g[0], v):
                g.append(v)
                break
        else:
            groups.append([v])
    top = max(len(g) for g in groups)
    return any(len(g) == top and same_value(field, chosen, g[0]) for g in groups)
