"""Genre tags to one canonical, lower-case vocabulary.

The vocabulary is Beatport's 35 chart genres (the slugs in
``pipeline/data/beatport_top100_2025-10-29.csv``), each given one readable name, plus Beatport's
``hip-hop`` (a store genre with no chart in that sample): setlists play it, and its tempo (60-115
BPM) is what tells a real 75 BPM reading from a half-time one (``pipeline.normalise.bpm``).
Every provider spelling we have seen maps onto it: Beatport display names ("Techno (Peak Time /
Driving)"), Discogs genres/styles ("Electronic", "Tech House"), Last.fm folksonomy
("techhouse", "dnb"), Spotify artist genres ("deep house", "german techno") and Deezer album
genres ("Dance").
Anything else ("seen live", "favorites", "rock") is dropped: a wrong genre pollutes gold
analytics more than a missing one.

Lookup is on a compact key (casefold, "and"/"n"/"'n'" -> "&", punctuation and spaces removed), so
"Drum and Bass", "drum-n-bass" and "Drum & Bass" all meet the same entry.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

from pipeline.normalise.errors import InvalidValue

__all__ = ["CANONICAL_GENRES", "CHART_SLUG_GENRES", "genre_for_chart_slug", "normalise_genres"]

_FIELD = "genre"
_MAX_TAGS = 500
_MAX_TAG_LENGTH = 200

# chart slug -> (canonical name, Beatport display name, further aliases)
_TABLE: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "140-deep-dubstep-grime": (
        "deep dubstep & grime",
        "140 / Deep Dubstep / Grime",
        ("140", "grime", "deep dubstep"),
    ),
    "afro-house": ("afro house", "Afro House", ("afrohouse", "afro tech")),
    "amapiano": ("amapiano", "Amapiano", ("piano", "south african house")),
    "ambient-experimental": (
        "ambient",
        "Ambient / Experimental",
        ("experimental", "dark ambient", "drone"),
    ),
    "bass-club": ("bass club", "Bass / Club", ("club", "jersey club")),
    "bass-house": ("bass house", "Bass House", ("fidget house",)),
    "brazilian-funk": ("brazilian funk", "Brazilian Funk", ("baile funk", "funk carioca")),
    "breaks-breakbeat-uk-bass": (
        "breaks",
        "Breaks / Breakbeat / UK Bass",
        ("breakbeat", "uk bass", "big beat", "nu skool breaks"),
    ),
    "dance-pop": ("dance pop", "Dance / Pop", ("dance", "electropop", "dance & electronic")),
    "deep-house": ("deep house", "Deep House", ("deephouse",)),
    "downtempo": ("downtempo", "Downtempo", ("chillout", "chill out", "trip hop", "chill")),
    "drum-bass": (
        "drum & bass",
        "Drum & Bass",
        ("dnb", "d&b", "drum bass", "jungle", "liquid funk", "neurofunk"),
    ),
    "dubstep": ("dubstep", "Dubstep", ("brostep", "riddim")),
    "electro-classic-detroit-modern": (
        "electro",
        "Electro (Classic / Detroit / Modern)",
        ("electro funk", "detroit electro"),
    ),
    # Discogs files every dance record under the top-level genre "Electronic"; it is the
    # closest honest bucket, and the provider's styles usually add the precise genre next to it.
    "electronica": ("electronica", "Electronica", ("electronic", "idm", "electronic music")),
    "funky-house": ("funky house", "Funky House", ("disco house", "filter house", "french house")),
    "hard-dance-hardcore-neo-rave": (
        "hard dance",
        "Hard Dance / Hardcore / Neo Rave",
        ("hardcore", "hardstyle", "neo rave", "gabber", "happy hardcore", "uk hardcore"),
    ),
    "hard-techno": ("hard techno", "Hard Techno", ("hardtechno", "industrial techno", "schranz")),
    "hip-hop": ("hip-hop", "Hip-Hop", ("hip hop", "hiphop", "rap", "boom bap", "hip-hop / r&b")),
    "house": ("house", "House", ("chicago house", "vocal house", "dutch house", "uk house")),
    "indie-dance": ("indie dance", "Indie Dance", ("indie dance / nu disco", "dark disco")),
    "jackin-house": ("jackin house", "Jackin House", ("jacking house", "jackin")),
    "mainstage": ("mainstage", "Mainstage", ("big room", "edm", "electro house", "big room house")),
    "melodic-house-techno": (
        "melodic house & techno",
        "Melodic House & Techno",
        ("melodic techno", "melodic house"),
    ),
    "minimal-deep-tech": (
        "minimal & deep tech",
        "Minimal / Deep Tech",
        ("minimal", "deep tech", "minimal techno"),
    ),
    "nu-disco-disco": ("nu disco", "Nu Disco / Disco", ("disco", "nudisco", "italo disco")),
    "organic-house": ("organic house", "Organic House", ("organic house / downtempo",)),
    "progressive-house": ("progressive house", "Progressive House", ("progressive",)),
    "psy-trance": (
        "psytrance",
        "Psy-Trance",
        ("psychedelic trance", "goa trance", "goa", "full on"),
    ),
    "tech-house": ("tech house", "Tech House", ("techhouse",)),
    "techno-peak-time-driving": (
        "techno",
        "Techno (Peak Time / Driving)",
        ("peak time techno", "driving techno", "detroit techno", "german techno"),
    ),
    "techno-raw-deep-hypnotic": (
        "hypnotic techno",
        "Techno (Raw / Deep / Hypnotic)",
        ("raw techno", "deep techno", "dub techno", "hypnotic"),
    ),
    "trance-main-floor": (
        "trance",
        "Trance (Main Floor)",
        ("uplifting trance", "vocal trance", "progressive trance"),
    ),
    "trance-raw-deep-hypnotic": (
        "hypnotic trance",
        "Trance (Raw / Deep / Hypnotic)",
        ("deep trance", "raw trance"),
    ),
    "trap-future-bass": (
        "trap & future bass",
        "Trap / Future Bass",
        ("trap", "future bass", "edm trap"),
    ),
    "uk-garage-bassline": (
        "uk garage",
        "UK Garage / Bassline",
        ("ukg", "bassline", "2 step", "2-step", "speed garage"),
    ),
}

CHART_SLUG_GENRES: dict[str, str] = {slug: row[0] for slug, row in _TABLE.items()}
CANONICAL_GENRES: tuple[str, ...] = tuple(CHART_SLUG_GENRES.values())

_CONNECTOR_RE = re.compile(r"(?<![^\W_])(?:and|n)(?![^\W_])")
_STRIP_RE = re.compile(r"[^0-9a-z&]+")


def _compact(tag: str) -> str:
    text = unicodedata.normalize("NFKD", tag.casefold())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = re.sub(r"['’]n['’]?", "&", text.replace("+", "&"))  # drum'n'bass
    text = _CONNECTOR_RE.sub("&", text)
    return _STRIP_RE.sub("", text)


def _build_aliases() -> dict[str, str]:
    aliases: dict[str, str] = {}
    for slug, (canonical, display, extra) in _TABLE.items():
        for spelling in (slug, canonical, display, *extra):
            key = _compact(spelling)
            if aliases.setdefault(key, canonical) != canonical:  # pragma: no cover - table bug
                raise RuntimeError(f"genre alias {spelling!r} maps to two genres")
    return aliases


_ALIASES = _build_aliases()


def genre_for_chart_slug(slug: str) -> str:
    """Canonical genre for a Beatport chart slug such as ``"tech-house"``."""
    if not isinstance(slug, str) or slug.strip().lower() not in CHART_SLUG_GENRES:
        raise InvalidValue(_FIELD, slug, "not a known Beatport chart slug")
    return CHART_SLUG_GENRES[slug.strip().lower()]


def _lookup(tag: str) -> str | None:
    if len(tag) > _MAX_TAG_LENGTH:
        return None
    key = _compact(tag)
    return _ALIASES.get(key) if key else None


def _tags(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        # A single string may be a delimited list ("House, Techno"); "/" is not a delimiter
        # because Beatport names use it inside one genre ("Minimal / Deep Tech").
        return re.split(r"[,;|]", value)
    if isinstance(value, bytes | bytearray | Mapping) or not isinstance(value, Iterable):
        raise InvalidValue(
            _FIELD, value, f"expected a string or a list of strings, got {type(value).__name__}"
        )
    tags: list[str] = []
    for index, item in enumerate(value):
        if index >= _MAX_TAGS:
            raise InvalidValue(_FIELD, "<list>", f"more than {_MAX_TAGS} tags")
        # Deezer ({"id", "name"}) and Last.fm ({"name", "count"}) wrap tags in objects.
        if isinstance(item, Mapping):
            item = item.get("name")
        if not isinstance(item, str):
            raise InvalidValue(_FIELD, item, f"tag must be a string, got {type(item).__name__}")
        tags.append(item)
    return tags


def normalise_genres(value: Any) -> list[str]:
    """Canonical genres in first-seen order, deduplicated; unknown tags are dropped."""
    result: list[str] = []
    for tag in _tags(value):
        canonical = _lookup(tag)
        if canonical is not None and canonical not in result:
            result.append(canonical)
    return result
