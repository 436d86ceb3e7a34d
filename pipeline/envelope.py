"""The ingest envelope scrapers send, and its validation: one contract for every entrance.

One JSON object per message (or per line of a backfill file) mirroring the bronze columns. A valid
envelope is appended to bronze; anything else is quarantined with the reason and the original
bytes (see ``pipeline.ingest``). The JSON Schema published in ``docs/envelope.schema.json`` is
generated from :class:`Envelope` (``songnodes ingest --schema``).

Every entrance (``songnodes ingest``, the ``ingest_envelope``/``ingest_batch`` tasks, a future
HTTP intake) hands :func:`parse_envelope` either the bytes it received or the Python value the
broker decoded; the same limits apply to both: :data:`MAX_ENVELOPE_BYTES` on the bytes (for a
value, on its JSON text), :data:`MAX_ENVELOPE_DEPTH` on nesting, UTF-8 only, no NUL and no lone
surrogate anywhere (PostgreSQL can store neither). Text fields are stored exactly as sent:
cleaning (:func:`pipeline.normalise.text.clean_text`) belongs to silver and to matching; here it
only decides whether a required name is present at all.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
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

from pipeline.errors import PipelineError
from pipeline.tracklist import PlaylistEntry, TracklistEntry, read_tracklist

__all__ = [
    "MAX_ENVELOPE_BYTES",
    "MAX_ENVELOPE_DEPTH",
    "Envelope",
    "EnvelopeError",
    "PlaylistEntry",
    "envelope_json_schema",
    "parse_envelope",
    "text_problem",
]

#: Largest accepted message. A bigger one is quarantined (its bytes kept), not parsed: a 20 MB
#: scrape is a scraper bug, and parsing it would stall a worker.
MAX_ENVELOPE_BYTES = int(os.environ.get("SONGNODES_MAX_ENVELOPE_BYTES", str(8 * 1024 * 1024)))
#: Deepest accepted nesting of arrays/objects (the envelope object itself is level 1). Real scrapes
#: nest a handful of levels; a 5000-level line would exhaust Python's recursion in the JSON
#: decoder and in every walker after it, so it is quarantined before anything recurses.
MAX_ENVELOPE_DEPTH = int(os.environ.get("SONGNODES_MAX_ENVELOPE_DEPTH", "64"))


class EnvelopeError(PipelineError, ValueError):
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


def _raw(value: str) -> str:
    """Kept exactly as sent; refused only if PostgreSQL could not store it or if nothing is
    left once cleaned (an all-invisible name is no name)."""
    _clean(value)
    return value


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def text_problem(value: str) -> str | None:
    """What in ``value`` PostgreSQL text cannot hold (NUL, a lone surrogate), or None."""
    if "\x00" in value:
        return "a NUL character (U+0000), which PostgreSQL cannot store"
    found = _LONE_SURROGATE.search(value)
    if found:
        return f"a lone surrogate (U+{ord(found.group()):04X}), which is not Unicode text"
    return None


def _structure_problem(value: Any, limit: int | None = None) -> str | None:
    """Why ``value`` cannot be stored (too deep, NUL, lone surrogate), or None.

    Iterative on purpose: a recursive walk is exactly what a hostile depth would break."""
    limit = MAX_ENVELOPE_DEPTH if limit is None else limit
    stack: list[tuple[Any, int, str]] = [(value, 1, "envelope")]
    while stack:
        item, depth, path = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                return f"{path} contains {problem}"
            continue
        if isinstance(item, dict | list):
            if depth > limit:
                return f"nested deeper than {limit} levels (at {path})"
            if isinstance(item, dict):
                for key, child in item.items():
                    problem = text_problem(key) if isinstance(key, str) else None
                    if problem:
                        return f"a key in {path} contains {problem}"
                    stack.append((child, depth + 1, f"{path}.{key}"))
            else:
                stack.extend((child, depth + 1, f"{path}[{i}]") for i, child in enumerate(item))
    return None


def _text_may_be_unsafe(raw: bytes) -> bool:
    """Cheap pre-test on the JSON text: NUL and surrogates can only arrive as ``\\u`` escapes
    (the bytes are valid UTF-8), and depth cannot exceed the number of brackets."""
    return b"\\u" in raw or raw.count(b"[") + raw.count(b"{") > MAX_ENVELOPE_DEPTH


Text = Annotated[StrictStr, AfterValidator(_clean)]
OptText = Annotated[StrictStr | None, AfterValidator(lambda v: None if v is None else _clean(v))]
# Envelope fields: validated like Text, stored as sent (bronze keeps what was sent).
RawText = Annotated[StrictStr, AfterValidator(_raw)]
OptRawText = Annotated[StrictStr | None, AfterValidator(lambda v: None if v is None else _raw(v))]


class Envelope(BaseModel):
    """What a scraper sends for one scraped track, playlist (setlist) or artist."""

    model_config = ConfigDict(extra="forbid", str_max_length=2000)

    kind: Literal["track", "playlist", "artist"]
    source: Annotated[RawText, Field(max_length=100, pattern=r"^[a-z0-9][a-z0-9._-]*$")]
    source_url: RawText
    scraper_version: Annotated[RawText, Field(max_length=100)]
    raw_json: dict[str, Any]
    scraped_at: dt.datetime | None = None
    source_track_id: OptRawText = None
    source_playlist_id: OptRawText = None
    source_artist_id: OptRawText = None
    artist_name: OptRawText = None
    track_title: OptRawText = None
    playlist_name: OptRawText = None
    event_name: OptRawText = None
    event_date: dt.date | None = None
    aliases: list[RawText] | None = None

    @field_validator("scraped_at")
    @classmethod
    def _aware(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("scraped_at must carry a time zone (e.g. 2025-10-29T12:00:00Z)")
        return value

    @field_validator("raw_json")
    @classmethod
    def _raw_json_storable(cls, value: dict[str, Any]) -> dict[str, Any]:
        problem = _structure_problem(value, MAX_ENVELOPE_DEPTH - 1)
        if problem:
            raise ValueError(problem.replace("envelope", "raw_json", 1))
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


def parse_envelope(data: bytes | str | dict[str, Any] | Any) -> Envelope:
    """Decode and validate one envelope, raising :class:`EnvelopeError` with a clear reason.

    ``data`` is what arrived: bytes (a line, a request body), text, or the value a broker decoded.
    Never raises anything else for any input (the fuzz tier holds it to that)."""
    if isinstance(data, bytes | bytearray | memoryview | str):
        if isinstance(data, str):
            problem = text_problem(data)
            if problem:
                raise EnvelopeError(f"message text contains {problem}")
            raw = data.encode("utf-8")
        else:
            raw = bytes(data)
        if len(raw) > MAX_ENVELOPE_BYTES:
            raise EnvelopeError(
                f"payload is {len(raw)} bytes, over the {MAX_ENVELOPE_BYTES}-byte limit"
            )
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EnvelopeError(f"not valid UTF-8 at byte {exc.start}") from None
        try:
            obj: Any = json.loads(text)
        except json.JSONDecodeError as exc:
            msg = f"malformed JSON: {exc.msg} (line {exc.lineno} col {exc.colno})"
            raise EnvelopeError(msg) from None
        except RecursionError:
            # The C decoder stops at the interpreter's recursion limit, far above ours.
            raise EnvelopeError(f"nested deeper than {MAX_ENVELOPE_DEPTH} levels") from None
        check = _text_may_be_unsafe(raw)
    else:
        obj, check = data, True
    if not isinstance(obj, dict):
        raise EnvelopeError(f"an envelope must be a JSON object, got {_json_type(obj)}")
    problem = _structure_problem(obj) if check else None
    if problem:
        raise EnvelopeError(f"unstorable envelope: {problem}")
    try:
        return Envelope.model_validate(obj)
    except ValidationError as exc:
        errors = [
            {"loc": ".".join(str(p) for p in e["loc"]), "msg": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False, include_input=False)
        ]
        summary = "; ".join(f"{e['loc'] or 'envelope'}: {e['msg']}" for e in errors[:5])
        raise EnvelopeError(f"invalid envelope: {summary}", errors) from None


def _json_type(value: Any) -> str:
    names = {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


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
