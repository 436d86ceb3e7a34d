"""Bronze is append-only in the database and idempotent even when optional ids are NULL."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, text

from tests.db._helpers import expect_db_error, insert_bronze_track, scalar

pytestmark = pytest.mark.db

BRONZE_TABLES = [
    "bronze_scraped_tracks",
    "bronze_scraped_playlists",
    "bronze_scraped_artists",
    "bronze_api_enrichments",
]


@pytest.fixture
def one_row_each(db_connection: Connection) -> Connection:
    """One row in each bronze table."""
    track = insert_bronze_track(db_connection)
    db_connection.execute(
        text(
            "INSERT INTO bronze_scraped_playlists (source, source_url, scraper_version, raw_json)"
            " VALUES ('t', 'u', 'v', '{}');"
            "INSERT INTO bronze_scraped_artists (source, scraper_version, raw_json, artist_name)"
            " VALUES ('t', 'v', '{}', 'A');"
        )
    )
    db_connection.execute(
        text(
            "INSERT INTO bronze_api_enrichments (bronze_track_id, api_provider, api_endpoint,"
            " raw_response, response_status) VALUES (:t, 'spotify', '/x', '{}', 200)"
        ),
        {"t": track},
    )
    return db_connection


@pytest.mark.parametrize("table", BRONZE_TABLES)
@pytest.mark.parametrize(
    "statement",
    ["UPDATE {t} SET created_at = now()", "DELETE FROM {t}", "TRUNCATE {t} CASCADE"],
)
def test_bronze_rejects_mutation(one_row_each: Connection, table: str, statement: str) -> None:
    """UPDATE, DELETE and TRUNCATE on every bronze table raise an error naming the table."""
    message = expect_db_error(one_row_each, statement.format(t=table), "is append-only")
    assert table in message
    assert scalar(one_row_each, f"SELECT count(*) FROM {table}") == 1


def test_redelivered_payload_with_null_id_conflicts(db_connection: Connection) -> None:
    """The same payload twice with source_track_id NULL is rejected by the identity key."""
    insert_bronze_track(db_connection, source_track_id=None)
    expect_db_error(
        db_connection,
        "INSERT INTO bronze_scraped_tracks (source, source_url, scraper_version, raw_json)"
        " VALUES ('test', 'https://example.test/t', 't-1',"
        ' \'{"artist": "A", "title": "T"}\')',
        "uq_bronze_scraped_tracks_identity",
    )


def test_rescrape_with_changed_payload_is_new_row(db_connection: Connection) -> None:
    """A re-scrape whose raw_json changed is kept as history (a second row)."""
    insert_bronze_track(db_connection, raw_json='{"v": 1}')
    insert_bronze_track(db_connection, raw_json='{"v": 2}')
    assert scalar(db_connection, "SELECT count(*) FROM bronze_scraped_tracks") == 2


def test_content_hash_is_generated(db_connection: Connection) -> None:
    """content_hash is md5 of the jsonb text, computed by the database."""
    bid = insert_bronze_track(db_connection, raw_json='{"b": 1, "a": 2}')
    got = scalar(
        db_connection, "SELECT content_hash FROM bronze_scraped_tracks WHERE id = :i", i=bid
    )
    assert got == scalar(db_connection, """SELECT md5('{"a": 2, "b": 1}'::jsonb::text)""")


def test_playlist_and_artist_keys_hold_with_null_ids(db_connection: Connection) -> None:
    """Playlists and artists with NULL source ids are deduplicated too."""
    sql_p = (
        "INSERT INTO bronze_scraped_playlists (source, source_url, scraper_version, raw_json)"
        " VALUES ('t', 'u', 'v', '{\"n\": 1}')"
    )
    db_connection.execute(text(sql_p))
    expect_db_error(db_connection, sql_p, "uq_bronze_scraped_playlists_identity")
    sql_a = (
        "INSERT INTO bronze_scraped_artists (source, scraper_version, raw_json, artist_name)"
        " VALUES ('t', 'v', '{\"n\": 1}', 'A')"
    )
    db_connection.execute(text(sql_a))
    expect_db_error(db_connection, sql_a, "uq_bronze_scraped_artists_identity")


def test_track_references_playlist_with_position(db_connection: Connection) -> None:
    """bronze tracks carry playlist_id (FK) and position, the columns the scrapers write."""
    pid = scalar(
        db_connection,
        "INSERT INTO bronze_scraped_playlists (source, source_url, scraper_version, raw_json)"
        " VALUES ('t', 'u', 'v', '{}') RETURNING id",
    )
    db_connection.execute(
        text(
            "INSERT INTO bronze_scraped_tracks (source, source_url, scraper_version, raw_json,"
            " playlist_id, position) VALUES ('t', 'u', 'v', '{}', :p, 1),"
            " ('t', 'u', 'v', '{}', :p, 2)"
        ),
        {"p": pid},
    )
    assert scalar(db_connection, "SELECT count(*) FROM bronze_scraped_tracks") == 2
    expect_db_error(
        db_connection,
        "INSERT INTO bronze_scraped_tracks (source, source_url, scraper_version, raw_json,"
        " playlist_id) VALUES ('t', 'u', 'v', '{}', gen_random_uuid())",
        "fk_bronze_scraped_tracks_playlist_id",
    )
