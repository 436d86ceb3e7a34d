"""Small SQL helpers shared by the tests/db modules."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

__all__ = [
    "expect_db_error",
    "insert_bronze_track",
    "insert_scraped_track",
    "insert_silver_track",
    "scalar",
]


def scalar(conn: Connection, sql: str, **params: Any) -> Any:
    """First column of the first row."""
    return conn.execute(text(sql), params).scalar()


def expect_db_error(conn: Connection, sql: str, match: str, **params: Any) -> str:
    """Run ``sql`` in a savepoint, assert it fails with ``match`` in the message; return it."""
    savepoint = conn.begin_nested()
    with pytest.raises(DBAPIError) as info:
        conn.execute(text(sql), params)
    savepoint.rollback()
    message = str(info.value.orig)
    assert match in message, message
    return message


def insert_bronze_track(conn: Connection, **values: Any) -> Any:
    """Insert one bronze track (defaults for the NOT NULL columns); return its id."""
    row = {
        "source": "test",
        "source_url": "https://example.test/t",
        "source_track_id": None,
        "scraper_version": "t-1",
        "raw_json": '{"artist": "A", "title": "T"}',
        "artist_name": None,
        "track_title": None,
        **values,
    }
    return scalar(
        conn,
        "INSERT INTO bronze_scraped_tracks (source, source_url, source_track_id, scraper_version,"
        " raw_json, artist_name, track_title) VALUES (:source, :source_url, :source_track_id,"
        " :scraper_version, CAST(:raw_json AS jsonb), :artist_name, :track_title) RETURNING id",
        **row,
    )


def insert_scraped_track(conn: Connection, artist: str, title: str) -> str:
    """A bronze track as a setlist scraper (mixesdb) would send it, with a unique URL."""
    return str(
        insert_bronze_track(
            conn,
            source="mixesdb",
            source_url=f"https://example.test/{uuid.uuid4()}",
            raw_json="{}",
            artist_name=artist,
            track_title=title,
        )
    )


def insert_silver_track(conn: Connection, artist: str, title: str, **values: Any) -> Any:
    """Insert one silver track with optional extra columns; return its id."""
    cols = ["artist_name", "track_title", *values]
    params = {"artist_name": artist, "track_title": title, **values}
    placeholders = ", ".join(f":{c}" for c in cols)
    return scalar(
        conn,
        f"INSERT INTO silver_enriched_tracks ({', '.join(cols)}) VALUES ({placeholders})"
        " RETURNING id",
        **params,
    )
