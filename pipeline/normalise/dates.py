"""Release dates with their precision.

Providers give ``"2001"``, ``"2001-03"``, ``"2001-03-07"``, Discogs ``"2001-00-00"`` /
``"2001-03-00"`` (zeros mean "unknown part"), ints (GetSongBPM album ``year``), Spotify strings
with a separate ``release_date_precision``, and ISO timestamps (``"2001-03-07T00:00:00Z"``).
We keep the precision so a year-only date is never shown as 1 January. Years before 1900 or
dates more than a year ahead are data errors (placeholders such as ``0000`` or ``9999``).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Literal

from pipeline.normalise.errors import InvalidValue

__all__ = ["Precision", "ReleaseDate", "parse_release_date"]

Precision = Literal["day", "month", "year"]
_FIELD = "release_date"
_RANK: dict[str, int] = {"year": 0, "month": 1, "day": 2}
_DATE_RE = re.compile(
    r"^(\d{4})(?:-(\d{2})(?:-(\d{2})"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?)?)?$",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class ReleaseDate:
    """A date plus how much of it is known; ``date`` holds the first day of the known period."""

    date: dt.date
    precision: Precision

    @property
    def iso(self) -> str:
        """``"2001"``, ``"2001-03"`` or ``"2001-03-07"`` depending on precision."""
        if self.precision == "year":
            return f"{self.date.year:04d}"
        if self.precision == "month":
            return f"{self.date.year:04d}-{self.date.month:02d}"
        return self.date.isoformat()


def _from_parts(value: Any, year: int, month: int, day: int) -> ReleaseDate:
    # Discogs writes unknown parts as 00; an unknown month makes the day meaningless too.
    if month == 0:
        month, day, precision = 1, 1, "year"
    elif day == 0:
        day, precision = 1, "month"
    else:
        precision = "day"
    try:
        date = dt.date(year, month, day)
    except ValueError as exc:
        raise InvalidValue(_FIELD, value, f"not a calendar date ({exc})") from exc
    return ReleaseDate(date, precision)  # type: ignore[arg-type]


def _parse(value: Any) -> ReleaseDate:
    if isinstance(value, bool):
        raise InvalidValue(_FIELD, value, "a boolean is not a date")
    if isinstance(value, dt.datetime):
        return ReleaseDate(value.date(), "day")
    if isinstance(value, dt.date):
        return ReleaseDate(value, "day")
    if isinstance(value, int):
        if not 1 <= value <= 9999:
            raise InvalidValue(_FIELD, value, "year out of range")
        return ReleaseDate(dt.date(value, 1, 1), "year")
    if not isinstance(value, str):
        raise InvalidValue(_FIELD, value, f"unsupported type {type(value).__name__}")
    text = value.strip()
    match = _DATE_RE.match(text) if len(text) <= 40 else None
    if match is None:
        raise InvalidValue(_FIELD, value, "not YYYY, YYYY-MM, YYYY-MM-DD or an ISO timestamp")
    year = int(match[1])
    if year == 0:
        raise InvalidValue(_FIELD, value, "year 0000 is a placeholder")
    month = int(match[2]) if match[2] else 0
    day = int(match[3]) if match[3] else 0
    if match[2] is None:
        return ReleaseDate(dt.date(year, 1, 1), "year")
    if match[3] is None:
        if month == 0:
            return ReleaseDate(dt.date(year, 1, 1), "year")
        if not 1 <= month <= 12:
            raise InvalidValue(_FIELD, value, "month out of range")
        return ReleaseDate(dt.date(year, month, 1), "month")
    return _from_parts(value, year, month, day)


def _truncate(parsed: ReleaseDate, precision: Precision) -> ReleaseDate:
    if precision == "year":
        return ReleaseDate(parsed.date.replace(month=1, day=1), "year")
    if precision == "month":
        return ReleaseDate(parsed.date.replace(day=1), "month")
    return parsed


def parse_release_date(
    value: Any, precision: str | None = None, *, today: dt.date | None = None
) -> ReleaseDate:
    """Parse a provider release date; ``precision`` is Spotify's ``release_date_precision``.

    A declared precision coarser than the string truncates it (Spotify sometimes pads); one finer
    than the string is a contradiction and raises. ``today`` is injectable for tests.
    """
    parsed = _parse(value)
    if precision is not None:
        if not isinstance(precision, str) or precision not in _RANK:
            raise InvalidValue(_FIELD, value, f"unknown precision {precision!r}")
        if _RANK[precision] > _RANK[parsed.precision]:
            raise InvalidValue(_FIELD, value, f"precision {precision} finer than the value")
        parsed = _truncate(parsed, precision)  # type: ignore[arg-type]
    if parsed.date.year < 1900:
        raise InvalidValue(_FIELD, value, "before 1900")
    current = today or dt.date.today()
    try:
        limit = current.replace(year=current.year + 1)
    except ValueError:  # 29 February
        limit = current.replace(year=current.year + 1, day=28)
    if parsed.date > limit:
        raise InvalidValue(_FIELD, value, "more than a year in the future")
    return parsed
