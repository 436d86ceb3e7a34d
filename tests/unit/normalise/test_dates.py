"""Release dates with precision."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.normalise.dates import ReleaseDate, parse_release_date
from pipeline.normalise.errors import InvalidValue

TODAY = dt.date(2026, 11, 26)


@pytest.mark.parametrize(
    ("raw", "iso", "precision"),
    [
        ("2001", "2001", "year"),
        ("2001-03", "2001-03", "month"),
        ("2001-03-07", "2001-03-07", "day"),
        ("2001-00-00", "2001", "year"),  # Discogs unknown month and day
        ("2001-03-00", "2001-03", "month"),  # Discogs unknown day
        ("2001-03-07T00:00:00Z", "2001-03-07", "day"),
        ("2001-03-07T23:59:59.123+02:00", "2001-03-07", "day"),
        (" 2001-03-07 ", "2001-03-07", "day"),
        (2001, "2001", "year"),
        (dt.date(2001, 3, 7), "2001-03-07", "day"),
        ("2027-06-01", "2027-06-01", "day"),  # announced pre-release within a year
    ],
)
def test_parse_release_date(raw: object, iso: str, precision: str) -> None:
    """Provider date spellings parse with the right precision and ISO form."""
    parsed = parse_release_date(raw, today=TODAY)
    assert (parsed.iso, parsed.precision) == (iso, precision)


def test_spotify_precision_argument() -> None:
    """Spotify's release_date_precision truncates a padded date and refuses a finer claim."""
    assert parse_release_date("1981-12-01", "month", today=TODAY).iso == "1981-12"
    assert parse_release_date("1981", "year", today=TODAY).iso == "1981"
    assert parse_release_date("1981-12-15", "day", today=TODAY).iso == "1981-12-15"
    with pytest.raises(InvalidValue):
        parse_release_date("1981", "day", today=TODAY)
    with pytest.raises(InvalidValue):
        parse_release_date("1981", "week", today=TODAY)


@pytest.mark.parametrize(
    "raw",
    [
        "1899",
        "1899-12-31",
        "0000-00-00",
        "9999",
        "2028-01-01",
        "2001-13",
        "2001-02-30",
        "2001-3-7",
        "07/03/2001",
        "",
        "soon",
        "2001\x00",
        "'; DROP TABLE x; --",
        None,
        True,
        1899,
        -5,
        2001.0,
        ["2001"],
        {"year": 2001},
        "2" * 10_000,
    ],
    ids=repr,
)
def test_invalid_dates(raw: object) -> None:
    """Pre-1900, far-future, impossible and malformed dates raise InvalidValue."""
    with pytest.raises(InvalidValue) as info:
        parse_release_date(raw, today=TODAY)
    assert info.value.field == "release_date"


def test_release_date_is_frozen() -> None:
    """ReleaseDate is immutable, so it can be shared between results safely."""
    parsed = parse_release_date("2001", today=TODAY)
    with pytest.raises(AttributeError):
        parsed.precision = "day"  # type: ignore[misc]
    assert parsed == ReleaseDate(dt.date(2001, 1, 1), "year")


@given(
    st.dates(min_value=dt.date(1900, 1, 1), max_value=TODAY),
    st.sampled_from(["day", "month", "year"]),
)
def test_iso_round_trip(date: dt.date, precision: str) -> None:
    """Parsing the ISO form of a parsed date gives the same date and precision (idempotent)."""
    parsed = parse_release_date(date.isoformat(), precision, today=TODAY)
    assert parse_release_date(parsed.iso, today=TODAY) == parsed


@given(st.one_of(st.text(max_size=40), st.integers(), st.none(), st.floats(), st.booleans()))
def test_never_raises_anything_else(value: object) -> None:
    """Arbitrary input parses or raises InvalidValue."""
    try:
        parsed = parse_release_date(value, today=TODAY)
    except InvalidValue:
        return
    assert 1900 <= parsed.date.year <= TODAY.year + 1
