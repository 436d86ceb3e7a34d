"""db.bronze: COPY-based bulk append, aligned duplicate detection, NUL rejection, unicode."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from db.bronze import (
    append_api_enrichment,
    append_bronze_artists,
    append_bronze_playlists,
    append_bronze_tracks,
)
from tests.db._helpers import scalar

pytestmark = pytest.mark.db


def _track(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "source": "mixesdb",
        "source_url": f"https://mixesdb.test/{n}",
        "scraper_version": "mixesdb-1",
        "raw_json": {"artist": f"A{n}", "title": f"T{n}"},
        "artist_name": f"A{n}",
        "track_title": f"T{n}",
        **extra,
    }


def test_duplicates_within_batch_are_none(db_connection: Connection) -> None:
    """The second identical row of one batch is reported as a duplicate (None)."""
    ids = append_bronze_tracks(db_connection, [_track(1), _track(2), _track(1)])
    assert ids[0] is not None and ids[1] is not None and ids[2] is None
    assert scalar(db_connection, "SELECT count(*) FROM bronze_scraped_tracks") == 2


def test_duplicates_across_batches_are_none(db_connection: Connection) -> None:
    """Redelivering a batch inserts nothing and says so row by row."""
    first = append_bronze_tracks(db_connection, [_track(1), _track(2)])
    second = append_bronze_tracks(db_connection, [_track(2), _track(3), _track(1)])
    assert all(first)
    assert second[0] is None and second[1] is not None and second[2] is None


def test_null_source_track_id_still_deduplicates(db_connection: Connection) -> None:
    """source_track_id NULL does not defeat the idempotency key."""
    rows = [_track(1, source_track_id=None)]
    assert append_bronze_tracks(db_connection, rows)[0] is not None
    assert append_bronze_tracks(db_connection, rows) == [None]


def test_changed_payload_is_new_row(db_connection: Connection) -> None:
    """Same source/url/id with different raw_json is history: a new row."""
    a = _track(1, source_track_id="x")
    b = {**a, "raw_json": {"artist": "A1", "title": "T1", "bpm": 128}}
    assert all(append_bronze_tracks(db_connection, [a, b]))


@pytest.mark.parametrize(
    ("row", "field"),
    [
        (_track(1, artist_name="bad\x00name"), "artist_name"),
        (_track(1, raw_json={"title": "x\x00"}), "raw_json.title"),
        (_track(1, raw_json={"nested": [{"a": "ok"}, {"b": "\x00"}]}), "raw_json.nested[1].b"),
    ],
)
def test_nul_bytes_rejected_before_db(
    db_connection: Connection, row: dict[str, Any], field: str
) -> None:
    """A NUL anywhere raises ValueError naming the field, and nothing is written."""
    with pytest.raises(ValueError, match=field.replace("[", r"\[").replace("]", r"\]")):
        append_bronze_tracks(db_connection, [_track(0), row])
    assert scalar(db_connection, "SELECT count(*) FROM bronze_scraped_tracks") == 0


def test_missing_required_field_rejected(db_connection: Connection) -> None:
    """A row without source_url is refused with a clear message."""
    row = _track(1)
    del row["source_url"]
    with pytest.raises(ValueError, match="row 0: missing required field"):
        append_bronze_tracks(db_connection, [row])


def test_odd_unicode_round_trips(db_connection: Connection) -> None:
    """Combining marks, emoji, RTL text and quotes survive COPY unchanged."""
    odd = 'Bjo\u0308rk ☃ 🎧 \u202eRTL\u202c "quoted" \\ back\\slash\ttab\nnewline ß ǅ'
    ids = append_bronze_tracks(db_connection, [_track(1, artist_name=odd, raw_json={"a": odd})])
    row = db_connection.execute(
        text("SELECT artist_name, raw_json->>'a' FROM bronze_scraped_tracks WHERE id = :i"),
        {"i": ids[0]},
    ).one()
    assert tuple(row) == (odd, odd)


def test_works_with_session_and_playlist_link(db_session: Session) -> None:
    """Through an ORM session: playlists first, then tracks referencing them by position."""
    (pid,) = append_bronze_playlists(
        db_session,
        [
            {
                "source": "1001tracklists",
                "source_url": "https://1001.test/set",
                "scraper_version": "v2",
                "raw_json": {"name": "set"},
                "playlist_name": "set",
            }
        ],
    )
    assert pid is not None
    ids = append_bronze_tracks(
        db_session, [_track(1, playlist_id=pid, position=1), _track(1, playlist_id=pid, position=2)]
    )
    assert all(ids)
    (aid,) = append_bronze_artists(
        db_session,
        [
            {
                "source": "1001tracklists",
                "scraper_version": "v2",
                "raw_json": {"n": "A"},
                "artist_name": "A",
                "aliases": ["A.", "a"],
            }
        ],
    )
    assert aid is not None


def test_api_enrichment_append(db_connection: Connection) -> None:
    """A raw provider response is stored with its track link; NUL is refused."""
    (tid,) = append_bronze_tracks(db_connection, [_track(1)])
    assert tid is not None
    eid = append_api_enrichment(
        db_connection,
        bronze_track_id=tid,
        api_provider="spotify",
        api_endpoint="/v1/search",
        request_params={"q": "strobe", "token": "[redacted]"},
        raw_response={"tracks": [{"id": "x"}]},
        response_status=200,
    )
    got = scalar(
        db_connection,
        "SELECT raw_response #>> '{tracks,0,id}' FROM bronze_api_enrichments WHERE id = :i",
        i=eid,
    )
    assert got == "x"
    with pytest.raises(ValueError, match="raw_response"):
        append_api_enrichment(
            db_connection,
            api_provider="spotify",
            api_endpoint="/x",
            raw_response={"a": "\x00"},
            response_status=200,
        )


def test_bulk_append_stays_inside_the_callers_transaction(engine: Any) -> None:
    """The COPY fast path as a transaction's first statement is undone by that transaction's
    rollback (it must not commit on its own)."""
    from sqlalchemy import text as sql_text

    marker = f"rollback-{uuid.uuid4().hex[:8]}"
    with engine.connect() as conn:
        conn.begin()
        ids = append_bronze_tracks(conn, [_track(1, source=marker)])
        assert ids[0] is not None
        conn.rollback()
    with engine.connect() as conn:
        n = conn.execute(
            sql_text("SELECT count(*) FROM bronze_scraped_tracks WHERE source = :s"), {"s": marker}
        ).scalar_one()
    assert n == 0
