"""The ingest envelope scrapers send, and its validation.

One JSON object per message (or per line of a backfill file) mirroring the bronze columns. A valid
envelope is appended to bronze; anything else is quarantined with the reason and the original
bytes (see ``pipeline.ingest``). The JSON Schema published in ``docs/envelope.schema.json`` is
generated from :class:`Envelope` (``songnodes ingest --schema``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from pipeline.tracklist import PlaylistEntry, TracklistEntry, read_tracklist

__all__ = [
    "MAX_ENVELOPE_BYTES",
    "Envelope",
    "EnvelopeError",
    "PlaylistEntry",
    "envelope_json_schema",
    "parse_envelope",
]

#: Largest accepted message. A bigger one is quarantined (its bytes kept), not parsed: a 20 MB
#: scrape is a scraper bug, and parsing it would stall a worker.
MAX_ENVELOPE_BYTES = int(os.environ.get("SONGNODES_MAX_ENVELOPE_BYTES", str(8 * 1024 * 1024)))


class EnvelopeError(ValueError):
    """An envelope that cannot go to bronze. ``reason`` is short; ``detail`` is a JSON list."""

    def __init__(self, reason: str, detail: list[dict[str, Any]] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail or []


def _no_nul(value: str) -> str:
    # PostgreSQL text and JSONB cannot hold U+0000; refusing here keeps the bronze row exact
    # (silently stripping would make bronze differ from what the scraper sent).
    if "\x00" in value:
        raise ValueError("contains a NUL character (U+0000), which PostgreSQL cannot store")
    return value


def _clean(value: str) -> str:
    from pipeline.normalise.text import clean_text

    return clean_text(_no_nul(value))


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


Text = Annotated[StrictStr, AfterValidator(_clean)]
OptText = Annotated[StrictStr | None, AfterValidator(lambda v: None if v is None else _clean(v))]


class Envelope(BaseModel):
    """What a scraper sends for one scraped track, playlist (setlist) or artist."""

    model_config = ConfigDict(extra="forbid", str_max_length=2000)

    kind: Literal["track", "playlist", "artist"]
    source: Annotated[Text, Field(max_length=100, pattern=r"^[a-z0-9][a-z0-9._-]*$")]
    source_url: Text
    scraper_version: Annotated[Text, Field(max_length=100)]
    raw_json: dict[str, Any]
    scraped_at: dt.datetime | None = None
    source_track_id: OptText = None
    source_playlist_id: OptText = None
    source_artist_id: OptText = None
    artist_name: OptText = None
    track_title: OptText = None
    playlist_name: OptText = None
    event_name: OptText = None
    event_date: dt.date | None = None
    aliases: list[Text] | None = None

    @field_validator("scraped_at")
    @classmethod
    def _aware(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("scraped_at must carry a time zone (e.g. 2025-10-29T12:00:00Z)")
        return value

    @field_validator("raw_json")
    @classmethod
    def _raw_json_storable(cls, value: dict[str, Any]) -> dict[str, Any]:
        if _has_nul(value):
            raise ValueError("contains a NUL character (U+0000), which PostgreSQL JSONB refuses")
        return value

    @model_validator(mode="after")
    def _kind_requirements(self) -> Envelope:
        if self.kind == "track" and not (self.artist_name and self.track_title):
            raise ValueError("a track envelope needs artist_name and track_title")
        if self.kind == "artist" and not self.artist_name:
            raise ValueError("an artist envelope needs artist_name")
        if self.kind == "playlist":
            if not self.playlist_name:
                raise ValueError("a playlist envelope needs playlist_name")
            tracks = self.raw_json.get("tracks")
            if not isinstance(tracks, list):
                raise ValueError("a playlist envelope needs raw_json.tracks (ordered tracklist)")
            # Entries are never refused here: pipeline.tracklist reads each one leniently and
            # flags what it cannot read, so one bad entry cannot quarantine its set.
        return self

    def tracklist(self) -> list[TracklistEntry]:
        """Every entry of a playlist envelope's tracklist, in the order sent (never raises)."""
        return read_tracklist(self.raw_json.get("tracks", []))


def parse_envelope(data: bytes | str | dict[str, Any]) -> Envelope:
    """Decode and validate one envelope, raising :class:`EnvelopeError` with a clear reason."""
    if isinstance(data, dict):
        obj: Any = data
    else:
        raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
        if len(raw) > MAX_ENVELOPE_BYTES:
            raise EnvelopeError(
                f"payload is {len(raw)} bytes, over the {MAX_ENVELOPE_BYTES}-byte limit"
            )
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EnvelopeError(f"not valid UTF-8 at byte {exc.start}") from exc
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            msg = f"malformed JSON: {exc.msg} (line {exc.lineno} col {exc.colno})"
            raise EnvelopeError(msg) from None
    if not isinstance(obj, dict):
        raise EnvelopeError(f"an envelope must be a JSON object, got {type(obj).__name__}")
    try:
        return Envelope.model_validate(obj)
    except ValidationError as exc:
        errors = [
            {"loc": ".".join(str(p) for p in e["loc"]), "msg": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False, include_input=False)
        ]
        summary = "; ".join(f"{e['loc'] or 'envelope'}: {e['msg']}" for e in errors[:5])
        raise EnvelopeError(f"invalid envelope: {summary}", errors) from None


def envelope_json_schema() -> dict[str, Any]:
    """The published JSON Schema of the envelope."""
    schema = Envelope.model_json_schema()
    # raw_json is free-form, so the tracklist rules are published beside it: a playlist's
    # raw_json.tracks is a list of PlaylistEntry (documented, flagged rather than enforced).
    entry = PlaylistEntry.model_json_schema()
    schema.setdefault("$defs", {})["PlaylistEntry"] = entry
    schema["allOf"] = [
        {
            "if": {"properties": {"kind": {"const": "playlist"}}},
            "then": {
                "properties": {
                    "raw_json": {
                        "required": ["tracks"],
                        "properties": {
                            "tracks": {
                                "type": "array",
                                "description": (
                                    "The setlist in play order. An entry that does not fit "
                                    "PlaylistEntry is kept in bronze as sent and flagged "
                                    "(songnodes quarantine); the set is never refused for it."
                                ),
                                "items": {"$ref": "#/$defs/PlaylistEntry"},
                            }
                        },
                    }
                }
            },
        }
    ]
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "SongNodes ingest envelope"
    return schema
