"""Ingest on real PostgreSQL: bronze appends, idempotency, and quarantine of hostile input."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from pipeline.ingest import encode_line, ingest_messages


def _env(**over: Any) -> dict[str, Any]:
    base = {
        "kind": "track",
        "source": "t-ingest",
        "source_url": "https://example.test/x",
        "scraper_version": "1",
        "artist_name": "Flava D & Stush",
        "track_title": "Energy",
        "raw_json": {"n": 1},
    }
    return base | over


def _quarantine(session: Session) -> list[Any]:
    return session.execute(
        text(
            "SELECT reason, raw_bytes, byte_length, received_via FROM ingest_quarantine "
            "ORDER BY received_at, id"
        )
    ).all()


def test_valid_track_is_appended_once_and_redelivery_adds_nothing(db_session: Session) -> None:
    """Same envelope twice: one bronze row; the second is counted as a duplicate."""
    first = ingest_messages(db_session, [_env()])
    second = ingest_messages(db_session, [_env()])
    assert len(first.track_ids) == 1 and first.duplicates == 0
    assert second.track_ids == [] and second.duplicates == 1
    n = db_session.execute(text("SELECT count(*) FROM bronze_scraped_tracks")).scalar_one()
    assert n == 1


def test_rescrape_with_changed_content_is_a_new_row(db_session: Session) -> None:
    """History is kept: a changed payload for the same URL appends a second bronze row."""
    ingest_messages(db_session, [_env(raw_json={"bpm": 140})])
    again = ingest_messages(db_session, [_env(raw_json={"bpm": 141})])
    assert len(again.track_ids) == 1
    rows = db_session.execute(
        text("SELECT raw_json->>'bpm' FROM bronze_scraped_tracks ORDER BY created_at, id")
    ).scalars()
    assert sorted(rows) == ["140", "141"]


def test_playlist_records_ordered_tracklist(db_session: Session) -> None:
    """A setlist becomes one bronze playlist plus one bronze track per entry, in position order."""
    env = _env(
        kind="playlist",
        playlist_name="Set",
        artist_name="DJ",
        raw_json={
            "tracks": [
                {"position": 2, "artist": "B", "title": "Two"},
                {"position": 1, "artist": "A", "title": "One"},
            ]
        },
    )
    result = ingest_messages(db_session, [env])
    assert len(result.playlist_ids) == 1 and len(result.track_ids) == 2
    rows = db_session.execute(
        text(
            "SELECT position, artist_name, track_title FROM bronze_scraped_tracks "
            "WHERE playlist_id = :p ORDER BY position"
        ),
        {"p": result.playlist_ids[0]},
    ).all()
    assert [tuple(r) for r in rows] == [(1, "A", "One"), (2, "B", "Two")]


HOSTILE: list[tuple[str, Any, str]] = [
    ("malformed JSON", '{"kind": "track", "source": ', "malformed JSON"),
    ("not an object", "[1, 2, 3]", "must be a JSON object"),
    ("NUL in raw_json", _env(raw_json={"note": "a\x00b"}), "NUL"),
    ("NUL in a name", _env(artist_name="Bad\x00Name"), "NUL"),
    ("missing title", {k: v for k, v in _env().items() if k != "track_title"}, "track_title"),
    ("wrong type", _env(artist_name=42), "artist_name"),
    ("unknown kind", _env(kind="album"), "kind"),
    ("naive timestamp", _env(scraped_at="2025-10-29T12:00:00"), "time zone"),
    ("unknown field", _env(sql="x"), "sql"),
]


@pytest.mark.parametrize(("label", "message", "reason"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_envelope_is_quarantined_with_reason_and_bytes(
    db_session: Session, label: str, message: Any, reason: str
) -> None:
    """Each bad envelope lands in quarantine with a reason naming the problem; nothing in bronze."""
    result = ingest_messages(db_session, [message])
    assert result.quarantined == 1, label
    rows = _quarantine(db_session)
    assert len(rows) == 1 and reason in rows[0].reason, rows[0].reason
    original = message if isinstance(message, str) else json.dumps(message, ensure_ascii=False)
    assert bytes(rows[0].raw_bytes) == original.encode("utf-8", "surrogatepass")
    assert db_session.execute(text("SELECT count(*) FROM bronze_scraped_tracks")).scalar_one() == 0


def test_invalid_utf8_keeps_every_original_byte(db_session: Session) -> None:
    """A line that is not UTF-8 travels base64-encoded and is quarantined byte for byte."""
    raw = b'{"kind": "track", "artist_name": "\xff\xfe"}'
    message = encode_line(raw)
    assert message == {"b64": base64.b64encode(raw).decode()}
    result = ingest_messages(db_session, [message], via="cli")
    rows = _quarantine(db_session)
    assert result.quarantined == 1 and "UTF-8" in rows[0].reason
    assert bytes(rows[0].raw_bytes) == raw and rows[0].received_via == "cli"


def test_huge_payload_is_refused_but_kept(db_session: Session) -> None:
    """A 20 MB envelope is quarantined unparsed, all 20 MB kept for inspection."""
    big = json.dumps(_env(raw_json={"blob": "x" * (20 * 1024 * 1024)}))
    result = ingest_messages(db_session, [big])
    rows = _quarantine(db_session)
    assert result.quarantined == 1 and "limit" in rows[0].reason
    assert rows[0].byte_length == len(big.encode())


def test_bad_message_redelivered_is_quarantined_once(db_session: Session) -> None:
    """Quarantine is idempotent by content hash: a redelivered bad message is one row."""
    ingest_messages(db_session, ["{oops"])
    ingest_messages(db_session, ["{oops"])
    assert len(_quarantine(db_session)) == 1


def test_batch_goes_on_after_bad_lines(db_session: Session) -> None:
    """Bad lines in the middle of a batch do not stop the good ones."""
    messages = [
        _env(track_title="One", raw_json={"n": 1}),
        "{bad",
        _env(track_title="Two", artist_name=None),
        _env(track_title="Three", raw_json={"n": 3}),
    ]
    result = ingest_messages(db_session, messages)
    assert (len(result.track_ids), result.quarantined) == (2, 2)


def test_injection_strings_and_odd_unicode_are_stored_as_data(db_session: Session) -> None:
    """SQL-looking names are data; RTL, emoji, combining accents and even bidi control marks are
    stored in bronze exactly as sent (issue 15: cleaning belongs to silver)."""
    names = [
        ("Robert'); DROP TABLE bronze_scraped_tracks;--", "1 OR 1=1"),
        ("عمرو دياب", "تملي معاك 🎧"),
        ("Cafe\u0301 del Mar", "Ibiza\u202e"),
    ]
    result = ingest_messages(
        db_session,
        [_env(artist_name=a, track_title=t, raw_json={"i": i}) for i, (a, t) in enumerate(names)],
    )
    assert len(result.track_ids) == 3
    stored = db_session.execute(
        text("SELECT artist_name, track_title FROM bronze_scraped_tracks ORDER BY raw_json->>'i'")
    ).all()
    assert stored[0] == names[0]
    assert stored[1] == names[1]
    assert stored[2] == ("Cafe\u0301 del Mar", "Ibiza\u202e")


def test_scraped_artists_deduplicate_by_name_and_alias(database_url_env: str, engine: Any) -> None:
    """Artist envelopes land in silver once per real artist: a later scrape under an alias
    joins the same row, which lists both bronze rows."""
    from tasks.ingest import ingest_batch

    tag = uuid_hex()
    first = {
        "kind": "artist",
        "source": "t-artists",
        "source_url": f"https://example.test/{tag}",
        "scraper_version": "1",
        "artist_name": f"Deadmau5 {tag}",
        "aliases": [f"Joel Zimmerman {tag}"],
        "raw_json": {"n": 1},
    }
    second = first | {"artist_name": f"joel zimmerman {tag}", "aliases": None, "raw_json": {"n": 2}}
    ingest_batch.run([first], "test")
    ingest_batch.run([second], "test")
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT canonical_name, cardinality(bronze_ids) AS n FROM silver_enriched_artists "
                "WHERE canonical_name ILIKE :p OR :alias = ANY(aliases)"
            ),
            {"p": f"%{tag}", "alias": f"joel zimmerman {tag}"},
        ).all()
    assert [(r.canonical_name, r.n) for r in rows] == [(f"Deadmau5 {tag}", 2)]


def uuid_hex() -> str:
    import uuid

    return uuid.uuid4().hex[:8]
