"""BPM parsing and half/double-time reconciliation.

Providers disagree on tempo in two ways: formatting (Beatport ints, Deezer floats with 0 meaning
unknown, GetSongBPM strings) and octave (Beatport lists some tracks at half time, e.g. 68 for a
136 BPM track). ``parse_bpm`` fixes the first; ``reconcile_bpm``, ``same_tempo`` and
``consensus_bpm`` deal with the second against other providers' readings.

When no other reading settles the octave, the genre does (issue 14): ``TEMPO_RANGES`` gives the
tempo a genre is played at, and ``fold_to_genre`` keeps a reading inside its genre's range (a
75 BPM downtempo or hip-hop track stays 75), folds one whose half or double is inside (a 64 BPM
reading of a techno track is half time: 128), and keeps anything else as read, with a note. The
ranges are deliberately wide (a DJ's view of each Beatport genre); genres played at both
octaves (trap, Brazilian funk, ambient) span both, so they never fold.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Sequence
from numbers import Real
from typing import Any

from pipeline.normalise.errors import InvalidValue

__all__ = [
    "DJ_TEMPO",
    "MAX_BPM",
    "MIN_BPM",
    "TEMPO_RANGES",
    "consensus_bpm",
    "fold_to_genre",
    "parse_bpm",
    "plausible_for",
    "reconcile_bpm",
    "same_tempo",
    "tempo_range",
]

MIN_BPM = 20.0
MAX_BPM = 300.0
_FIELD = "bpm"
_NUMBER_RE = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$")
# DJ music lives here; breaks ties between equally supported octaves, and is what "plausible"
# means for a reading whose genre is unknown.
DJ_TEMPO = _TYPICAL = (70.0, 180.0)

# Canonical genre (pipeline.normalise.genres) -> (lowest, highest) tempo it is played at.
TEMPO_RANGES: dict[str, tuple[float, float]] = {
    "afro house": (110, 130),
    "amapiano": (100, 120),
    "ambient": (50, 160),
    "bass club": (120, 150),
    "bass house": (120, 135),
    "brazilian funk": (80, 160),
    "breaks": (110, 145),
    "dance pop": (90, 135),
    "deep dubstep & grime": (130, 150),
    "deep house": (110, 128),
    "downtempo": (60, 115),
    "drum & bass": (155, 185),
    "dubstep": (135, 155),
    "electro": (100, 140),
    "electronica": (70, 140),
    "funky house": (115, 132),
    "hard dance": (140, 200),
    "hard techno": (135, 170),
    "hip-hop": (60, 115),
    "house": (110, 132),
    "hypnotic techno": (115, 145),
    "hypnotic trance": (125, 145),
    "indie dance": (95, 130),
    "jackin house": (118, 132),
    "mainstage": (120, 150),
    "melodic house & techno": (112, 132),
    "minimal & deep tech": (115, 135),
    "nu disco": (100, 128),
    "organic house": (95, 126),
    "progressive house": (115, 132),
    "psytrance": (130, 150),
    "tech house": (118, 132),
    "techno": (120, 150),
    "trance": (125, 145),
    "trap & future bass": (60, 180),
    "uk garage": (125, 142),
}


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


def tempo_range(genres: Sequence[str] | None) -> tuple[str, tuple[float, float]] | None:
    """The primary (first ranged) genre and its range, or None when no genre has one."""
    for genre in genres or ():
        if isinstance(genre, str) and genre in TEMPO_RANGES:
            return genre, TEMPO_RANGES[genre]
    return None


def plausible_for(value: Any, genres: Sequence[str] | None) -> bool | None:
    """Whether ``value`` is a tempo the primary genre is played at; None without a ranged genre."""
    ranged = tempo_range(genres)
    if ranged is None:
        return None
    lo, hi = ranged[1]
    return lo <= _positive(value) <= hi


def fold_to_genre(value: Any, genres: Sequence[str] | None) -> tuple[float, str | None]:
    """``(tempo, note)``: the reading kept when its genre plays it, folded when only its half or
    double is in the genre's range (the note says which), kept with a note when neither is;
    ``(value, None)`` when no genre has a range."""
    number = _positive(value)
    ranged = tempo_range(genres)
    if ranged is None:
        return round(number, 2), None
    genre, (lo, hi) = ranged
    if lo <= number <= hi:
        return round(number, 2), None
    for factor, reading in ((2.0, "half"), (0.5, "double")):
        folded = number * factor
        if lo <= folded <= hi and MIN_BPM <= folded <= MAX_BPM:
            return round(folded, 2), (
                f"{number:g} BPM is a {reading}-time reading for {genre} "
                f"({lo:g}-{hi:g}); stored {folded:g}"
            )
    return round(number, 2), f"{number:g} BPM is outside the usual {genre} tempo ({lo:g}-{hi:g})"


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
