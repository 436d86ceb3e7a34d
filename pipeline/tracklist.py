"""Setlist entries as scrapers send them: read leniently, never refused.

A playlist envelope's ``raw_json.tracks`` is its tracklist. Scrapers of 1001Tracklists, MixesDB
and the like send unidentified tracks blank or as ``ID``/``ID - ID``/``?``/``unknown``, mark
tracks played over the previous one with ``w/``, name mashups ``A vs. B``, repeat position
numbers and write cue times as ``mm:ss``, ``h:mm:ss`` or seconds. :func:`read_tracklist` reads
every entry into a :class:`TracklistEntry` and never raises: what cannot be read as sent becomes
a *flag* (a short reason) on that entry, the entry stays in bronze exactly as sent, and the rest
of the set flows on. The rules are published in ``docs/envelope.schema.json`` through
:class:`PlaylistEntry` (see the README, "Setlists").

Hand-written rather than a pydantic model with validators: pydantic refuses a value or accepts
it, while each entry here must always be accepted and keep every reason it is odd.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pipeline.normalise.errors import InvalidValue
from pipeline.normalise.text import MAX_TEXT_LENGTH, clean_text

__all__ = [
    "MAX_POSITION",
    "PlaylistEntry",
    "TracklistEntry",
    "is_placeholder_name",
    "is_unidentified",
    "parse_cue_time",
    "read_tracklist",
]

MAX_POSITION = 10_000
#: Names that mean "nobody identified this track" (compared case-insensitively, whitespace
#: collapsed); any run of question marks counts too.
PLACEHOLDER_NAMES = frozenset({"", "id", "id - id", "unknown"})
_QUESTION_MARKS = re.compile(r"^\?+$")
# " vs " / " vs. " between two titles: two tracks mixed into one (a mashup). In the artist
# field alone it is a credit ("Armin van Buuren vs Vini Vici - Great Spirit" is one release).
_VS = re.compile(r"\s+vs\.?\s+", re.IGNORECASE)
_W_PREFIX = re.compile(r"^w/\s*", re.IGNORECASE)
_SECONDS = re.compile(r"^\d+(?:\.\d+)?$")
_MM_SS = re.compile(r"^(\d+):([0-5]\d)$")
_H_MM_SS = re.compile(r"^(\d+):([0-5]\d):([0-5]\d)$")
_KEEP_FORMAT = {"\u200c", "\u200d"}  # ZWNJ/ZWJ are spelling, not junk (see normalise.text)


class PlaylistEntry(BaseModel):
    """One entry of ``raw_json.tracks`` as the schema publishes it. Nothing here is enforced at
    ingest: an entry that does not fit is kept in bronze as sent and flagged (README, Setlists)."""

    model_config = ConfigDict(extra="allow", title="PlaylistEntry")

    position: int | str | None = Field(
        default=None,
        description=(
            f"1-{MAX_POSITION}, a number or a digit string ('07'). 'w/' marks a track played "
            "over the previous one. Missing: the previous entry's position + 1 (for a w/ slot: "
            "the previous entry's). Positions may repeat: a later entry at a position already "
            "taken is played over it, like a w/ slot."
        ),
    )
    artist: str | None = Field(
        default=None,
        description=(
            "Empty, missing, 'ID', 'ID - ID', '?' or 'unknown' (any case): an unidentified "
            "position, kept and counted. A leading 'w/ ' marks a w/ slot. Longer than "
            f"{MAX_TEXT_LENGTH} characters: flagged, not looked up. Control characters: "
            "flagged, removed for lookups."
        ),
    )
    title: str | None = Field(default=None, description="As artist. 'A vs. B' is a mashup.")
    name: str | None = Field(
        default=None,
        description="'Artist - Title' in one string, read when artist and title are both absent.",
    )
    cue_time: str | int | float | None = Field(
        default=None,
        description=(
            "When the track starts in the set: 'mm:ss' (minutes may pass 59), 'h:mm:ss', or "
            "seconds (a number or digit string), optionally in brackets ('[00:05:00]'). "
            "Anything else is flagged and kept as sent."
        ),
    )
    mashup: bool | None = Field(
        default=None, description="True for a mashup (also implied by 'vs.' in the title)."
    )
    parts: list[dict[str, Any]] | None = Field(
        default=None, description="A mashup's parts as [{'artist', 'title'}]."
    )
    with_previous: bool | None = Field(
        default=None, description="True for a w/ slot (also 'w': true, position 'w/')."
    )
    source_track_id: str | None = Field(default=None, description="The source's own track id.")


@dataclass(frozen=True)
class TracklistEntry:
    """One entry read from a tracklist. ``raw`` is exactly what was sent; ``artist``/``title``
    are the cleaned names to look up, ``None`` when missing, a placeholder or unusable."""

    index: int
    raw: Any
    position: int
    artist: str | None
    title: str | None
    identified: bool
    with_previous: bool
    slot_role: Literal["main", "with"]
    mashup: bool
    mashup_parts: list[dict[str, str]] | None
    cue_time_ms: int | None
    cue_time_raw: str | None
    source_track_id: str | None
    flags: tuple[str, ...] = field(default_factory=tuple)


def is_placeholder_name(value: Any) -> bool:
    """True for a missing name or one a scraper sends for an unidentified track."""
    if value is None:
        return True
    if not isinstance(value, str):
        return False
    folded = " ".join(value.split()).casefold()
    return folded in PLACEHOLDER_NAMES or bool(_QUESTION_MARKS.match(folded))


def is_unidentified(artist: str | None, title: str | None) -> bool:
    """Setlists list unknown tracks blank or as ``ID - ID``, ``?``, ``unknown``
    (:func:`is_placeholder_name`): nothing to enrich, nothing to deduplicate."""
    return is_placeholder_name(artist) or is_placeholder_name(title)


def parse_cue_time(value: Any) -> int | None:
    """Milliseconds into the set, ``None`` when absent; ``ValueError`` when unreadable."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ValueError(f"cue_time {value!r} is not a time")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"cue_time {value!r} is not a time")
        return round(value * 1000)
    if not isinstance(value, str):
        raise ValueError(f"cue_time is a {type(value).__name__}, not a time")
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):  # "[00:05:00]", as some scrapers print it
        text = text[1:-1].strip()
    if _SECONDS.match(text):
        return round(float(text) * 1000)
    if m := _MM_SS.match(text):
        return (int(m[1]) * 60 + int(m[2])) * 1000
    if m := _H_MM_SS.match(text):
        return (int(m[1]) * 3600 + int(m[2]) * 60 + int(m[3])) * 1000
    raise ValueError(f"cue_time {text[:40]!r} is not mm:ss, h:mm:ss or seconds")


def _has_control(value: str) -> bool:
    # Whitespace controls (tab, newline) are ordinary scraping debris that cleaning turns into
    # spaces; any other control or format character is worth a flag.
    for ch in value:
        if ch.isspace() or ch in _KEEP_FORMAT:
            continue
        category = unicodedata.category(ch)
        if category == "Cc" or (category == "Cf" and not 0xE0020 <= ord(ch) <= 0xE007F):
            return True
    return False


def _name(label: str, value: Any, flags: list[str]) -> str | None:
    """The usable cleaned name, or None (placeholder or unusable, with a flag for the latter)."""
    if value is None:
        return None
    if not isinstance(value, str):
        flags.append(f"{label} is not text ({_json_type(value)})")
        return None
    if len(value) > MAX_TEXT_LENGTH:
        flags.append(f"{label} is {len(value)} characters, over {MAX_TEXT_LENGTH}")
        return None
    if is_placeholder_name(value):
        return None
    if _has_control(value):
        flags.append(f"{label} contains control characters (removed for lookups)")
    try:
        cleaned = clean_text(value)
    except InvalidValue:
        flags.append(f"{label} is empty once control characters are removed")
        return None
    return None if is_placeholder_name(cleaned) else cleaned


def _position(raw: Any, flags: list[str]) -> tuple[int | None, bool]:
    """(explicit position or None, whether the position marks a w/ slot)."""
    if raw is None:
        return None, False
    if isinstance(raw, str):
        text = raw.strip()
        if not text:
            return None, False
        if text.casefold() == "w/":
            return None, True
        if text.isdigit() and 1 <= int(text) <= MAX_POSITION:
            return int(text), False
    elif isinstance(raw, int) and not isinstance(raw, bool) and 1 <= raw <= MAX_POSITION:
        return raw, False
    shown = str(raw)[:40]
    flags.append(f"position {shown!r} unreadable (1-{MAX_POSITION}, a digit string or 'w/')")
    return None, False


def _parts(raw: dict[str, Any], artist: str | None, title: str | None) -> list[dict[str, str]]:
    given = raw.get("parts")
    if isinstance(given, list):
        parts = []
        for part in given:
            if isinstance(part, dict):
                names = {k: part.get(k) for k in ("artist", "title")}
                parts.append({k: clean_text(v) for k, v in names.items() if _usable(v)})
        return parts
    titles = _VS.split(title) if title else []
    artists = _VS.split(artist) if artist else []
    if len(titles) > 1 and len(artists) == len(titles):
        return [{"artist": a, "title": t} for a, t in zip(artists, titles, strict=True)]
    return [{"title": t} for t in titles]


def _usable(value: Any) -> bool:
    if not isinstance(value, str) or is_placeholder_name(value) or len(value) > MAX_TEXT_LENGTH:
        return False
    try:
        clean_text(value)
    except InvalidValue:
        return False
    return True


def _json_type(value: Any) -> str:
    names = {type(None): "null", bool: "boolean", str: "string", list: "array"}
    return names.get(type(value), "number" if isinstance(value, int | float) else "value")


def _read(index: int, raw: Any, previous: int | None, taken: set[int]) -> TracklistEntry:
    flags: list[str] = []
    entry: dict[str, Any] = raw if isinstance(raw, dict) else {}
    if not isinstance(raw, dict):
        flags.append(f"entry is not a JSON object ({_json_type(raw)})")
    explicit, w_position = _position(entry.get("position"), flags)
    artist_raw, title_raw = entry.get("artist"), entry.get("title")
    with_previous = w_position or entry.get("with_previous") is True or entry.get("w") is True
    if isinstance(artist_raw, str) and _W_PREFIX.match(artist_raw.strip()):
        with_previous = True
        artist_raw = _W_PREFIX.sub("", artist_raw.strip())
    if artist_raw is None and title_raw is None and isinstance(entry.get("name"), str):
        artist_raw, sep, title_raw = entry["name"].partition(" - ")
        if not sep:
            artist_raw, title_raw = None, entry["name"]
    artist = _name("artist", artist_raw, flags)
    title = _name("title", title_raw, flags)
    if explicit is not None:
        position = explicit
    elif with_previous and previous is not None:
        position = previous
    else:
        position = (previous or 0) + 1
    if with_previous and previous is None:
        flags.append("w/ slot with no track before it (read as a main entry)")
        with_previous = False
    role: Literal["main", "with"] = "with" if with_previous or position in taken else "main"
    mashup = entry.get("mashup") is True or bool(title and _VS.search(title))
    cue_raw = entry.get("cue_time", entry.get("cue_time_ms"))
    try:
        cue_ms = parse_cue_time(entry.get("cue_time"))
        if cue_ms is None and isinstance(entry.get("cue_time_ms"), int):
            cue_ms = entry["cue_time_ms"] if entry["cue_time_ms"] >= 0 else None
    except ValueError as exc:
        flags.append(str(exc))
        cue_ms = None
    source_id = entry.get("source_track_id")
    return TracklistEntry(
        index=index,
        raw=raw,
        position=position,
        artist=artist,
        title=title,
        identified=artist is not None and title is not None,
        with_previous=with_previous,
        slot_role=role,
        mashup=mashup,
        mashup_parts=_parts(entry, artist, title) if mashup else None,
        cue_time_ms=cue_ms,
        cue_time_raw=None if cue_raw is None else str(cue_raw)[:100],
        source_track_id=source_id if isinstance(source_id, str) else None,
        flags=tuple(flags),
    )


def read_tracklist(tracks: Any) -> list[TracklistEntry]:
    """Every entry of ``raw_json.tracks``, in the order sent (``index``), each with its
    effective position and role. Never raises."""
    if not isinstance(tracks, list):
        return []
    entries: list[TracklistEntry] = []
    taken: set[int] = set()
    previous: int | None = None
    for index, raw in enumerate(tracks):
        entry = _read(index, raw, previous, taken)
        entries.append(entry)
        taken.add(entry.position)
        previous = entry.position
    return entries
