"""Field parsers used by ``extract``: thin adapters from provider raw values to canonical values.

The real normalisation lives in ``pipeline.normalise`` (pure, shared with the merge step); these
adapters only pick the right parser and unit for a provider and produce the canonical type the
contract pins (``release_date`` as an ISO string, ``genre`` as a non-empty list, ...).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

from pipeline.normalise.bpm import parse_bpm
from pipeline.normalise.dates import parse_release_date
from pipeline.normalise.durations import to_ms
from pipeline.normalise.genres import normalise_genres
from pipeline.normalise.isrc import normalise_isrc
from pipeline.normalise.keys import to_camelot
from pipeline.normalise.placeholders import clean_name
from pipeline.normalise.text import clean_text

__all__ = [
    "as_bpm",
    "as_count",
    "as_date",
    "as_date_with_precision",
    "as_duration",
    "as_genres",
    "as_id",
    "as_isrc",
    "as_key",
    "as_name",
    "as_text",
    "as_unit_float",
    "try_parse",
]


def as_bpm(raw: Any) -> float | None:
    """BPM as float; 0 means unknown (None); out of range or garbage raises."""
    return parse_bpm(raw)


def as_key(raw: Any) -> str | None:
    """Any provider key spelling to Camelot; None/empty means unknown."""
    if raw is None:
        return None
    return to_camelot(raw)


def as_isrc(raw: Any) -> str | None:
    if raw is None:
        return None
    return normalise_isrc(raw)


def as_genres(raw: Any) -> list[str] | None:
    """Canonical genre list; a list that maps to nothing known is "unknown", not an error."""
    if raw is None:
        return None
    genres = normalise_genres(raw)
    return genres or None


def as_date(raw: Any) -> str | None:
    """ISO date at its real precision: "2001", "2001-03" or "2001-03-07"."""
    if raw is None or raw == "":
        return None
    return parse_release_date(raw).iso


def as_date_with_precision(precision: Any) -> Callable[[Any], str | None]:
    """Spotify sends the precision separately (``release_date_precision``)."""

    def parse(raw: Any) -> str | None:
        if raw is None or raw == "":
            return None
        return parse_release_date(raw, precision if isinstance(precision, str) else None).iso

    return parse


def try_parse(parse: Callable[[Any], Any], raw: Any) -> Any:
    """``parse(raw)`` or None: for matching hints (candidate duration/ISRC), never for values."""
    try:
        return parse(raw)
    except (ValueError, TypeError, ArithmeticError):
        return None


def as_duration(unit: Literal["ms", "s", "clock", "iso8601"]) -> Callable[[Any], int | None]:
    def parse(raw: Any) -> int | None:
        if raw is None or raw == "":
            return None
        return to_ms(raw, unit)

    return parse


def as_text(raw: Any) -> str | None:
    if raw is None:
        return None
    return clean_text(raw)


def as_name(raw: Any) -> str | None:
    """An artist or label name: cleaned text, and a placeholder (``Not On Label``, ``Various
    Artists``, ``[unknown]``) is rejected, never a value."""
    if raw is None:
        return None
    return clean_name(raw)


def as_id(raw: Any) -> str:
    """Provider ids are opaque strings; ints are accepted (Deezer, Discogs) and stringified."""
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise TypeError(f"id must be str or int, got {type(raw).__name__}")
    text = str(raw).strip()
    if not text:
        raise ValueError("empty id")
    return text


def as_unit_float(raw: Any) -> float | None:
    """A 0..1 descriptor (energy, danceability, valence)."""
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise TypeError(f"expected a number, got {type(raw).__name__}")
    value = float(raw)
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{raw!r} is outside [0, 1]")
    return value


def as_count(raw: Any) -> int | None:
    """A non-negative integer count; Last.fm sends them as strings."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise TypeError(f"expected an integer, got {type(raw).__name__}")
    value = int(raw)
    if value < 0:
        raise ValueError(f"negative count {value}")
    return value
