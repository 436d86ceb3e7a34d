"""BPM parsing and half/double-time reconciliation.

Providers disagree on tempo in two ways: formatting (Beatport ints, Deezer floats with 0 meaning
unknown, GetSongBPM strings) and octave (Beatport lists some tracks at half time, e.g. 68 for a
136 BPM track). ``parse_bpm`` fixes the first; ``reconcile_bpm``, ``same_tempo`` and
``consensus_bpm`` deal with the second.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Sequence
from numbers import Real
from typing import Any

from pipeline.normalise.errors import InvalidValue

__all__ = ["MAX_BPM", "MIN_BPM", "consensus_bpm", "parse_bpm", "reconcile_bpm", "same_tempo"]

MIN_BPM = 20.0
MAX_BPM = 300.0
_FIELD = "bpm"
_NUMBER_RE = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$")
# DJ music lives here; used only to break ties between equally supported octaves.
_TYPICAL = (70.0, 180.0)


def _as_float(value: Any) -> float:
    if isinstance(value, bool):
        raise InvalidValue(_FIELD, value, "a boolean is not a tempo")
    if isinstance(value, Real):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if len(text) > 32 or not _NUMBER_RE.match(text):
            raise InvalidValue(_FIELD, value, "not a plain number (units or garbage)")
        number = float(text)
    else:
        raise InvalidValue(_FIELD, value, f"unsupported type {type(value).__name__}")
    if math.isnan(number) or math.isinf(number):
        raise InvalidValue(_FIELD, value, "not a finite number")
    return number


def parse_bpm(value: Any) -> float | None:
    """Tempo as a float rounded to 2 decimals; 0 means unknown (Deezer) and gives None."""
    number = _as_float(value)
    if number == 0:
        return None
    if number < 0:
        raise InvalidValue(_FIELD, value, "negative tempo")
    if not MIN_BPM <= number <= MAX_BPM:
        raise InvalidValue(_FIELD, value, f"outside [{MIN_BPM:g}, {MAX_BPM:g}]")
    return round(number, 2)


def _positive(value: Any) -> float:
    number = _as_float(value)
    if number <= 0:
        raise InvalidValue(_FIELD, value, "tempo must be positive")
    return number


def reconcile_bpm(value: Any, reference: Any) -> float:
    """Whichever of ``value``, ``2*value``, ``value/2`` (kept in range) is nearest ``reference``."""
    number, target = _positive(value), _positive(reference)
    options: list[float] = [c for c in (number, number * 2, number / 2) if MIN_BPM <= c <= MAX_BPM]
    if not options:
        raise InvalidValue(_FIELD, value, "no octave of this tempo is in range")
    # min() keeps the first of equal distances, so the reading itself wins ties.
    nearest = min(options, key=lambda c: abs(c - target))
    return round(nearest, 2)


def _close(a: float, b: float, tolerance_pct: float) -> bool:
    return abs(a - b) <= tolerance_pct / 100.0 * max(a, b)


def same_tempo(a: Any, b: Any, tolerance_pct: float = 3.0) -> bool:
    """True when ``a`` and ``b`` agree within ``tolerance_pct`` directly or at half/double time."""
    x, y = _positive(a), _positive(b)
    return any(_close(x * factor, y, tolerance_pct) for factor in (1.0, 2.0, 0.5))


def consensus_bpm(values: Sequence[Any]) -> float | None:
    """Median tempo after folding half/double readings onto the best-supported tempo.

    Unknown readings (None, 0) are ignored; an empty input gives None. Invalid readings raise.
    """
    readings = [bpm for bpm in (None if v is None else parse_bpm(v) for v in values) if bpm]
    if not readings:
        return None

    def support(candidate: float) -> tuple[int, bool]:
        direct = sum(1 for r in readings if _close(r, candidate, 3.0))
        typical = _TYPICAL[0] <= candidate <= _TYPICAL[1]
        return direct, typical

    anchor = max(readings, key=support)
    folded = [reconcile_bpm(r, anchor) for r in readings]
    return round(statistics.median(folded), 2)
