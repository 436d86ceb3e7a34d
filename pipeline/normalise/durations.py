"""Track durations in milliseconds from every provider unit.

``ms``: Spotify/MusicBrainz/Beatport ints and Last.fm strings (``"240000"``); ``s``: Deezer
(``224``); ``clock``: Discogs/Beatport ``"7:54"`` or ``"1:02:03"``; ``iso8601``: TIDAL
``"PT3M44S"``. Results must lie in (0, 4 h]: a zero or a day-long "track" is a data error.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from numbers import Real
from typing import Any, Literal

from pipeline.normalise.errors import InvalidValue

__all__ = ["MAX_DURATION_MS", "DurationUnit", "to_ms"]

DurationUnit = Literal["ms", "s", "clock", "iso8601"]
MAX_DURATION_MS = 4 * 60 * 60 * 1000
_FIELD = "duration_ms"
_NUMBER_RE = re.compile(r"^\d+(?:\.\d+)?$")
_CLOCK_RE = re.compile(r"^(?:(\d{1,2}):)?(\d{1,3}):(\d{2})$")
_ISO_RE = re.compile(
    r"^P(?:(\d+)D)?(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$", re.IGNORECASE
)


def _number(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise InvalidValue(_FIELD, value, "a boolean is not a duration")
    if isinstance(value, Real):
        number = float(value)
        if math.isnan(number) or math.isinf(number):
            raise InvalidValue(_FIELD, value, "not a finite number")
        return Decimal(int(value)) if isinstance(value, int) else Decimal(repr(number))
    if isinstance(value, str):
        text = value.strip()
        if len(text) > 32 or not _NUMBER_RE.match(text):
            raise InvalidValue(_FIELD, value, "not a non-negative number")
        try:
            return Decimal(text)
        except InvalidOperation as exc:  # pragma: no cover - the regex already guarantees it
            raise InvalidValue(_FIELD, value, "not a number") from exc
    raise InvalidValue(_FIELD, value, f"unsupported type {type(value).__name__}")


def _clock(value: Any) -> Decimal:
    if not isinstance(value, str):
        raise InvalidValue(_FIELD, value, "clock durations must be strings like '7:54'")
    match = _CLOCK_RE.match(value.strip())
    if match is None:
        raise InvalidValue(_FIELD, value, "not m:ss or h:mm:ss")
    hours, minutes, seconds = int(match[1] or 0), int(match[2]), int(match[3])
    if seconds >= 60 or (match[1] is not None and minutes >= 60):
        raise InvalidValue(_FIELD, value, "minutes/seconds field out of range")
    return Decimal((hours * 60 + minutes) * 60 + seconds) * 1000


def _iso(value: Any) -> Decimal:
    if not isinstance(value, str):
        raise InvalidValue(_FIELD, value, "ISO 8601 durations must be strings like 'PT3M44S'")
    text = value.strip()
    match = _ISO_RE.match(text)
    if match is None or text.upper() in ("P", "PT"):
        raise InvalidValue(_FIELD, value, "not an ISO 8601 duration")
    days, hours, minutes = (int(g or 0) for g in match.groups()[:3])
    seconds = Decimal(match[4] or 0)
    return (Decimal(((days * 24 + hours) * 60 + minutes) * 60) + seconds) * 1000


def to_ms(value: Any, unit: DurationUnit) -> int:
    """Duration in whole milliseconds; raises ``InvalidValue`` outside (0, 4 h]."""
    if unit == "ms":
        millis = _number(value)
    elif unit == "s":
        millis = _number(value) * 1000
    elif unit == "clock":
        millis = _clock(value)
    elif unit == "iso8601":
        millis = _iso(value)
    else:
        raise InvalidValue(_FIELD, value, f"unknown unit {unit!r}")
    if millis > MAX_DURATION_MS:
        raise InvalidValue(_FIELD, value, "longer than 4 hours")
    result = int(millis.to_integral_value())
    if result <= 0:
        raise InvalidValue(_FIELD, value, "not a positive duration")
    return result
