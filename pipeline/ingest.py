"""Ingest: validated envelopes to bronze (append-only, idempotent), bad ones to quarantine.

Called by the ``tasks.ingest`` tasks and by ``songnodes ingest``. One call handles a batch inside
the caller's transaction; the caller enqueues enrichment for ``IngestResult.track_ids`` only
after commit. A repeated message inserts nothing (the bronze idempotency key covers every stored
envelope field and holds even with NULL optional ids); a re-scrape with any changed field is a
new bronze row, so history (and corrections) are kept.

The contract, the same whatever arrives: every message ends either in bronze or in
``ingest_quarantine`` with a reason and its exact bytes (:func:`decode_message` says what "exact"
means for a Python value); one bad message never costs the others of its batch; a batch that is
not a list at all is quarantined as a batch (``scope = 'batch'``).
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

from db.bronze import append_bronze_artists, append_bronze_playlists, append_bronze_tracks
from db.bulk import to_jsonb
from pipeline.envelope import (
    MAX_ENVELOPE_BYTES,
    Envelope,
    EnvelopeError,
    parse_envelope,
    text_problem,
)

__all__ = [
    "IngestResult",
    "RawMessage",
    "batch_messages",
    "decode_message",
    "encode_line",
    "ingest_batch",
    "ingest_lines",
    "ingest_messages",
    "quarantine_batch",
]

#: A message as it travels through the broker: a JSON-able envelope dict, a text line, or
#: ``{"b64": ...}`` for bytes that are not valid UTF-8 (so they still reach quarantine intact).
#: Anything else that arrives (a list, ``None``, a number) is accepted too and quarantined.
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


def json_text(value: Any) -> bytes:
    """The exact JSON text of a decoded value: it decodes back to an equal value.

    UTF-8 where it can be; a string holding lone surrogates (which UTF-8 cannot carry) is written
    with ``\\u`` escapes, as the broker carried it."""
    try:
        return json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value).encode("ascii")


def decode_message(message: Any) -> tuple[bytes, Any]:
    """(the exact bytes for quarantine, what to parse) for anything an entrance receives.

    * bytes: themselves.
    * ``{"b64": ...}`` (:func:`encode_line`): the bytes it carries.
    * text: its UTF-8. Text holding lone surrogates is not Unicode; if they are
      ``surrogateescape`` ones (how Python decodes undecodable bytes: ``open(errors=
      "surrogateescape")``, ``os.fsdecode``) the original bytes are restored, so a line sent as
      text is kept exactly as the same line sent by ``songnodes ingest``; otherwise its JSON text.
    * any other value (a dict, list, number, ``None``): its JSON text (:func:`json_text`);
      a value JSON cannot represent at all: its ``repr``, and it is refused.
    """
    if isinstance(message, bytes | bytearray | memoryview):
        raw = bytes(message)
        return raw, raw
    if isinstance(message, str):
        try:
            raw = message.encode("utf-8")
        except UnicodeEncodeError:
            try:
                raw = message.encode("utf-8", "surrogateescape")
            except UnicodeEncodeError:
                return json_text(message), message  # parse_envelope names the surrogate
        return raw, raw
    if isinstance(message, dict) and set(message) == {"b64"} and isinstance(message["b64"], str):
        try:
            raw = base64.b64decode(message["b64"], validate=True)
        except ValueError:
            pass  # not ours: quarantined as the object it is
        else:
            return raw, raw
    try:
        return json_text(message), message
    except (TypeError, ValueError, RecursionError) as exc:
        reason = f"not JSON-representable ({type(exc).__name__}: {exc})"[:500]
        try:
            raw = repr(message).encode("utf-8", "backslashreplace")
        except RecursionError:  # too deep even for repr: only a direct caller can pass this
            raw = f"<{type(message).__name__} nested too deep to represent>".encode()
        return raw, _Unencodable(reason)


class _Unencodable(str):
    """Marks a message whose value has no JSON text; the string is the reason."""


def _parse(raw: bytes, payload: Any) -> Envelope:
    """:func:`parse_envelope` with the size limit on every entrance and nothing escaping but
    :class:`EnvelopeError` (a failure of one message must not lose its batch)."""
    if isinstance(payload, _Unencodable):
        raise EnvelopeError(str(payload))
    if len(raw) > MAX_ENVELOPE_BYTES:
        limit = MAX_ENVELOPE_BYTES
        raise EnvelopeError(f"payload is {len(raw)} bytes, over the {limit}-byte limit")
    try:
        return parse_envelope(payload)
    except EnvelopeError:
        raise
    except Exception as exc:  # a validator bug or a pathological value: kept, with its reason
        reason = f"envelope could not be parsed: {type(exc).__name__}: {exc}"[:2000]
        raise EnvelopeError(reason) from None


def batch_messages(messages: Any) -> list[Any] | None:
    """The messages of a batch, or None when ``messages`` is not a batch (a list) at all."""
    if isinstance(messages, list | tuple):
        return list(messages)
    return None


_QUARANTINE_SQL = text(
    """
    INSERT INTO ingest_quarantine
        (kind, source, reason, error_detail, raw_bytes, byte_length, content_sha256,
         received_via, scope)
    VALUES (:kind, :source, :reason, CAST(:detail AS jsonb), :raw, :n, :sha, :via, :scope)
    ON CONFLICT (content_sha256) DO NOTHING
    """
)


def _quarantine_params(
    raw: bytes, exc: EnvelopeError, via: str, hint: Any, scope: str = "message"
) -> dict[str, Any]:
    return {
        "kind": _safe_hint(hint, "kind"),
        "source": _safe_hint(hint, "source"),
        "reason": exc.reason[:2000],
        "detail": to_jsonb(exc.detail),
        "raw": raw,
        "n": len(raw),
        "sha": hashlib.sha256(raw).hexdigest(),
        "via": via,
        "scope": scope,
    }


def _quarantine(session: Session, raw: bytes, exc: EnvelopeError, via: str, hint: Any) -> None:
    session.execute(_QUARANTINE_SQL, _quarantine_params(raw, exc, via, hint))


def quarantine_batch(session: Session, messages: Any, reason: str, via: str) -> str:
    """Keep a whole batch that could not be processed (``scope = 'batch'``); returns its sha256."""
    raw, _ = decode_message(messages)
    params = _quarantine_params(raw, EnvelopeError(reason), via, None, scope="batch")
    session.execute(_QUARANTINE_SQL, params)
    return str(params["sha"])


def _safe_hint(hint: Any, key: str) -> str | None:
    value = hint.get(key) if isinstance(hint, dict) else None
    if isinstance(value, str) and text_problem(value) is None:
        return value[:100]
    return None


def _ingest_track(session: Session, env: Envelope, result: IngestResult) -> None:
    # The same bulk path as a batch of tracks (db.bronze), with one row: used when a batch
    # falls back to appending its rows one by one.
    (new_id,) = append_bronze_tracks(session, [_track_row(env)])
    if new_id is None:
        result.duplicates += 1
    else:
        result.track_ids.append(new_id)


def _ingest_playlist(session: Session, env: Envelope, result: IngestResult) -> None:
    (playlist_id,) = append_bronze_playlists(
        session,
        [
            {
                "source": env.source,
                "source_url": env.source_url,
                "source_playlist_id": env.source_playlist_id,
                "scraper_version": env.scraper_version,
                "raw_json": env.raw_json,
                "playlist_name": env.playlist_name,
                "artist_name": env.artist_name,
                "event_name": env.event_name,
                "event_date": env.event_date,
                "scraped_at": env.scraped_at,
            }
        ],
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
    (new_id,) = append_bronze_artists(
        session,
        [
            {
                "source": env.source,
                "source_url": env.source_url,
                "source_artist_id": env.source_artist_id,
                "scraper_version": env.scraper_version,
                "raw_json": env.raw_json,
                "artist_name": env.artist_name,
                "aliases": env.aliases,
                "scraped_at": env.scraped_at,
            }
        ],
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
    session: Session, messages: Iterable[Any], *, via: str = "task"
) -> IngestResult:
    """Validate and append a batch. Invalid envelopes are quarantined and the batch goes on;
    each playlist/artist is isolated in a savepoint, tracks are bulk-appended."""
    result = IngestResult()
    tracks: list[tuple[bytes, Any, Envelope]] = []
    bad: list[dict[str, Any]] = []
    for message in messages:
        raw, payload = decode_message(message)
        hint = payload if isinstance(payload, dict) else None
        try:
            env = _parse(raw, payload)
        except EnvelopeError as exc:
            bad.append(_quarantine_params(raw, exc, via, hint))
            result.quarantined += 1
            result.reasons.append(exc.reason)
            continue
        if env.kind == "track":
            tracks.append((raw, hint, env))
        else:
            _one(session, raw, hint, env, result, via)
    if bad:
        # One statement for the batch's refused messages: a file with hostile lines must not
        # cost a round trip per line more than a clean one.
        session.execute(_QUARANTINE_SQL, bad)
    _append_tracks(session, tracks, result, via)
    return result


def ingest_lines(session: Session, lines: Sequence[bytes], *, via: str = "cli") -> IngestResult:
    """Convenience for raw lines (backfill files, tests)."""
    return ingest_messages(session, [encode_line(line) for line in lines], via=via)


#: The old name, kept for callers: it shared its name with the ``tasks.ingest.ingest_batch``
#: task, which takes messages, not a session and lines.
ingest_batch = ingest_lines
