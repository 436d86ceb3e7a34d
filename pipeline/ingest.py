"""Ingest: validated envelopes to bronze (append-only, idempotent), bad ones to quarantine.

Called by the ``tasks.ingest`` tasks and by ``songnodes ingest``. One call handles a batch inside
the caller's transaction; the caller enqueues enrichment for ``IngestResult.track_ids`` only
after commit. A repeated message inserts nothing (the bronze idempotency key holds even with NULL
optional ids); a re-scrape with changed content is a new bronze row, so history is kept.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.orm import Session

from db.bronze import append_bronze_tracks
from pipeline.enrich import to_jsonb
from pipeline.envelope import Envelope, EnvelopeError, parse_envelope

__all__ = ["IngestResult", "RawMessage", "decode_message", "encode_line", "ingest_messages"]

#: A message as it travels through the broker: a JSON-able envelope dict, a text line, or
#: ``{"b64": ...}`` for bytes that are not valid UTF-8 (so they still reach quarantine intact).
RawMessage = dict[str, Any] | str


@dataclass
class IngestResult:
    """What one batch did. Ids are of newly appended bronze rows only."""

    track_ids: list[UUID] = field(default_factory=list)
    playlist_ids: list[UUID] = field(default_factory=list)
    artist_ids: list[UUID] = field(default_factory=list)
    duplicates: int = 0
    quarantined: int = 0
    reasons: list[str] = field(default_factory=list)

    def merge(self, other: IngestResult) -> None:
        self.track_ids += other.track_ids
        self.playlist_ids += other.playlist_ids
        self.artist_ids += other.artist_ids
        self.duplicates += other.duplicates
        self.quarantined += other.quarantined
        self.reasons += other.reasons

    def as_dict(self) -> dict[str, Any]:
        return {
            "tracks": len(self.track_ids),
            "playlists": len(self.playlist_ids),
            "artists": len(self.artist_ids),
            "duplicates": self.duplicates,
            "quarantined": self.quarantined,
        }


def encode_line(raw: bytes) -> RawMessage:
    """Make one backfill line broker-safe without losing a byte."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return {"b64": base64.b64encode(raw).decode("ascii")}


def decode_message(message: RawMessage) -> tuple[bytes, bytes | dict[str, Any]]:
    """(original bytes for quarantine, what to parse)."""
    if isinstance(message, dict) and set(message) == {"b64"}:
        raw = base64.b64decode(message["b64"])
        return raw, raw
    if isinstance(message, dict):
        raw = json.dumps(message, ensure_ascii=False, default=str).encode("utf-8", "replace")
        return raw, message
    raw = message.encode("utf-8", "surrogatepass")
    return raw, raw


def _quarantine(
    session: Session, raw: bytes, exc: EnvelopeError, via: str, hint: dict[str, Any] | None
) -> None:
    session.execute(
        text(
            """
            INSERT INTO ingest_quarantine
                (kind, source, reason, error_detail, raw_bytes, byte_length, content_sha256,
                 received_via)
            VALUES (:kind, :source, :reason, CAST(:detail AS jsonb), :raw, :n, :sha, :via)
            ON CONFLICT (content_sha256) DO NOTHING
            """
        ),
        {
            "kind": _safe_hint(hint, "kind"),
            "source": _safe_hint(hint, "source"),
            "reason": exc.reason[:2000],
            "detail": to_jsonb(exc.detail),
            "raw": raw,
            "n": len(raw),
            "sha": hashlib.sha256(raw).hexdigest(),
            "via": via,
        },
    )


def _safe_hint(hint: dict[str, Any] | None, key: str) -> str | None:
    value = hint.get(key) if isinstance(hint, dict) else None
    if isinstance(value, str) and "\x00" not in value:
        return value[:100]
    return None


def _insert_returning(session: Session, sql: str, params: dict[str, Any]) -> UUID | None:
    row = session.execute(text(sql), params).first()
    return None if row is None else row[0]


def _ingest_track(session: Session, env: Envelope, result: IngestResult) -> None:
    # The same bulk path as a batch of tracks (db.bronze), with one row: used when a batch
    # falls back to appending its rows one by one.
    (new_id,) = append_bronze_tracks(session, [_track_row(env)])
    if new_id is None:
        result.duplicates += 1
    else:
        result.track_ids.append(new_id)


def _ingest_playlist(session: Session, env: Envelope, result: IngestResult) -> None:
    playlist_id = _insert_returning(
        session,
        """
        INSERT INTO bronze_scraped_playlists
            (source, source_url, source_playlist_id, scraper_version, raw_json, playlist_name,
             artist_name, event_name, event_date, scraped_at)
        VALUES (:source, :source_url, :source_playlist_id, :scraper_version,
                CAST(:raw_json AS jsonb), :playlist_name, :artist_name, :event_name, :event_date,
                COALESCE(:scraped_at, now()))
        ON CONFLICT DO NOTHING
        RETURNING id
        """,
        {
            "source": env.source,
            "source_url": env.source_url,
            "source_playlist_id": env.source_playlist_id,
            "scraper_version": env.scraper_version,
            "raw_json": json.dumps(env.raw_json, ensure_ascii=False),
            "playlist_name": env.playlist_name,
            "artist_name": env.artist_name,
            "event_name": env.event_name,
            "event_date": env.event_date,
            "scraped_at": env.scraped_at,
        },
    )
    if playlist_id is None:
        result.duplicates += 1
        return
    result.playlist_ids.append(playlist_id)
    # Each tracklist entry becomes a bronze track row tied to the playlist and its position, so
    # tracks heard only in setlists are enriched like any other. raw_json is the entry exactly
    # as sent; the name columns hold what to look up (NULL for an unidentified position, which
    # is then merged without lookups). An entry that cannot be read as sent is flagged, never
    # refused: one bad entry does not cost the set (pipeline.tracklist).
    entries = env.tracklist()
    # A JSON null entry has no bronze track row (bronze needs a raw_json value); it stays in the
    # playlist row's raw_json.tracks as sent, and its flag points at it by index.
    stored = [e for e in entries if e.raw is not None]
    rows = [
        {
            "source": env.source,
            "source_url": env.source_url,
            "source_track_id": entry.source_track_id,
            "scraper_version": env.scraper_version,
            "raw_json": entry.raw,
            "artist_name": entry.artist,
            "track_title": entry.title,
            "playlist_id": playlist_id,
            "position": entry.position,
            "scraped_at": env.scraped_at,
        }
        for entry in stored
    ]
    ids = append_bronze_tracks(session, rows) if rows else []
    result.track_ids += [i for i in ids if i is not None]
    bronze_of = {e.index: i for e, i in zip(stored, ids, strict=True)}
    flags = [
        {"p": playlist_id, "i": e.index, "t": bronze_of.get(e.index), "pos": e.position, "r": r}
        for e in entries
        for r in e.flags
    ]
    if not any(e.identified for e in entries):
        reason = (
            f"no identified entry among {len(entries)}: stored as a setlist without tracks"
            if entries
            else "empty tracklist: stored as a setlist without tracks"
        )
        flags.append({"p": playlist_id, "i": None, "t": None, "pos": None, "r": reason})
    if flags:
        session.execute(
            text(
                "INSERT INTO playlist_entry_flags "
                "(bronze_playlist_id, entry_index, bronze_track_id, position, reason) "
                "VALUES (:p, :i, :t, :pos, :r) ON CONFLICT DO NOTHING"
            ),
            flags,
        )


def _ingest_artist(session: Session, env: Envelope, result: IngestResult) -> None:
    new_id = _insert_returning(
        session,
        """
        INSERT INTO bronze_scraped_artists
            (source, source_url, source_artist_id, scraper_version, raw_json, artist_name,
             aliases, scraped_at)
        VALUES (:source, :source_url, :source_artist_id, :scraper_version,
                CAST(:raw_json AS jsonb), :artist_name, :aliases, COALESCE(:scraped_at, now()))
        ON CONFLICT DO NOTHING
        RETURNING id
        """,
        {
            "source": env.source,
            "source_url": env.source_url,
            "source_artist_id": env.source_artist_id,
            "scraper_version": env.scraper_version,
            "raw_json": json.dumps(env.raw_json, ensure_ascii=False),
            "artist_name": env.artist_name,
            "aliases": env.aliases,
            "scraped_at": env.scraped_at,
        },
    )
    if new_id is None:
        result.duplicates += 1
    else:
        result.artist_ids.append(new_id)


_HANDLERS = {"track": _ingest_track, "playlist": _ingest_playlist, "artist": _ingest_artist}


def _track_row(env: Envelope) -> dict[str, Any]:
    return {
        "source": env.source,
        "source_url": env.source_url,
        "source_track_id": env.source_track_id,
        "scraper_version": env.scraper_version,
        "raw_json": env.raw_json,
        "artist_name": env.artist_name,
        "track_title": env.track_title,
        "scraped_at": env.scraped_at,
    }


def _append_tracks(
    session: Session,
    pending: list[tuple[bytes, dict[str, Any] | None, Envelope]],
    result: IngestResult,
    via: str,
) -> None:
    """Plain tracks go through the bulk path (COPY to staging, one INSERT); if the database
    refuses the batch, each row is retried alone so only the offending one is quarantined."""
    if not pending:
        return
    try:
        with session.begin_nested():
            ids = append_bronze_tracks(session, [_track_row(env) for _, _, env in pending])
    except Exception:
        for raw, hint, env in pending:
            _one(session, raw, hint, env, result, via)
        return
    result.track_ids += [i for i in ids if i is not None]
    result.duplicates += sum(1 for i in ids if i is None)


def _one(
    session: Session,
    raw: bytes,
    hint: dict[str, Any] | None,
    env: Envelope,
    result: IngestResult,
    via: str,
) -> None:
    local = IngestResult()  # merged only if the savepoint commits
    try:
        with session.begin_nested():
            _HANDLERS[env.kind](session, env, local)
    except Exception as exc:  # a database refusal of one message must not lose the batch
        reason = f"database rejected the envelope: {type(exc).__name__}: {exc}"[:2000]
        _quarantine(session, raw, EnvelopeError(reason), via, hint)
        result.quarantined += 1
        result.reasons.append(reason)
        return
    result.merge(local)


def ingest_messages(
    session: Session, messages: Iterable[RawMessage], *, via: str = "task"
) -> IngestResult:
    """Validate and append a batch. Invalid envelopes are quarantined and the batch goes on;
    each playlist/artist is isolated in a savepoint, tracks are bulk-appended."""
    result = IngestResult()
    tracks: list[tuple[bytes, dict[str, Any] | None, Envelope]] = []
    for message in messages:
        raw, payload = decode_message(message)
        hint = payload if isinstance(payload, dict) else None
        try:
            env = parse_envelope(payload)
        except EnvelopeError as exc:
            _quarantine(session, raw, exc, via, hint)
            result.quarantined += 1
            result.reasons.append(exc.reason)
            continue
        if env.kind == "track":
            tracks.append((raw, hint, env))
        else:
            _one(session, raw, hint, env, result, via)
    _append_tracks(session, tracks, result, via)
    return result


def ingest_batch(session: Session, lines: Sequence[bytes], *, via: str = "cli") -> IngestResult:
    """Convenience for raw lines (backfill files, tests)."""
    return ingest_messages(session, [encode_line(line) for line in lines], via=via)
