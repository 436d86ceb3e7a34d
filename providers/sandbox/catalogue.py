"""The sandbox catalogue: one CSV row per track, with per-provider override columns.

See README.md for the format. Provider ids are derived deterministically from the row, so the
same catalogue always serves the same ids.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["BASE_COLUMNS", "DEFAULT_CATALOGUE", "Catalogue", "SandboxTrack", "load_catalogue"]

DEFAULT_CATALOGUE = Path(__file__).parent / "data" / "catalogue.csv"
BASE_COLUMNS = (
    "artist",
    "title",
    "isrc",
    "duration_ms",
    "bpm",
    "key",
    "genre",
    "label",
    "release_date",
    "energy",
    "danceability",
    "valence",
)
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_WORD = re.compile(r"[a-z0-9]+")


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:16], "big")


def words(text: str) -> set[str]:
    return set(_WORD.findall(text.casefold()))


@dataclass
class SandboxTrack:
    index: int
    base: dict[str, str]
    overrides: dict[str, dict[str, str]] = field(default_factory=dict)
    _ids: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    def get(self, provider: str, name: str) -> str:
        """The value ``provider`` serves for ``name`` (its override, else the base column)."""
        return self.overrides.get(provider, {}).get(name, self.base.get(name, ""))

    def known_to(self, provider: str) -> bool:
        return self.overrides.get(provider, {}).get("missing", "") not in ("1", "true", "yes")

    def provider_id(self, provider: str) -> str:
        # Cached: the sandbox shares the benchmark machine's CPU with the pipeline it serves,
        # and hashing on every request showed up in profiles.
        cached = self._ids.get(provider)
        if cached is None:
            cached = self._ids[provider] = self._provider_id(provider)
        return cached

    def _provider_id(self, provider: str) -> str:
        # A real id in the catalogue (column "<provider>.id", e.g. a track's real Spotify id
        # copied from a tracklist) wins: scraper rows carrying real ids resolve against it.
        real = self.overrides.get(provider, {}).get("id") or (
            self.overrides.get("musicbrainz", {}).get("id") if provider == "acousticbrainz" else ""
        )
        if real:
            return real
        seed = _digest(f"{provider}|{self.base['artist']}|{self.base['title']}")
        if provider == "spotify":
            out = ""
            for _ in range(22):
                seed, r = divmod(seed, 62)
                out += _B62[r]
            return out
        if provider in ("musicbrainz", "acousticbrainz"):
            return str(
                uuid.uuid5(uuid.NAMESPACE_URL, f"{self.base['artist']}|{self.base['title']}")
            )
        offsets = {"deezer": 3_000_000, "beatport": 17_000_000, "discogs": 20_000_000}
        if provider in offsets:
            return str(offsets[provider] + self.index)
        if provider == "tidal":
            return str(400_000_000 + self.index)
        return f"{seed % 36**6:x}"  # getsongbpm-style short id


class Catalogue:
    def __init__(self, tracks: Iterable[SandboxTrack]) -> None:
        self.tracks = list(tracks)
        self._by_id: dict[tuple[str, str], SandboxTrack] = {}
        self._words = [words(f"{t.base['artist']} {t.base['title']}") for t in self.tracks]
        # Inverted index (word -> track positions): a search scores only tracks that share a
        # word with the query instead of the whole catalogue; same results, far less CPU.
        self._postings: dict[str, list[int]] = {}
        for position, have in enumerate(self._words):
            for word in have:
                self._postings.setdefault(word, []).append(position)
        self._by_isrc: dict[str, dict[str, list[SandboxTrack]]] = {}
        self._by_artist_prefix: dict[str, SandboxTrack] = {}

    def by_id(self, provider: str, provider_id: str) -> SandboxTrack | None:
        key = (provider, provider_id)
        if not self._by_id:
            for t in self.tracks:
                for p in ("spotify", "musicbrainz", "deezer", "beatport", "discogs", "tidal"):
                    self._by_id[(p, t.provider_id(p))] = t
                self._by_id[("getsongbpm", t.provider_id("getsongbpm"))] = t
        track = self._by_id.get(key)
        if track is None and provider == "acousticbrainz":
            track = self._by_id.get(("musicbrainz", provider_id))
        return track if track is not None and track.known_to(provider) else None

    def by_isrc(self, provider: str, isrc: str) -> list[SandboxTrack]:
        isrc = isrc.replace("-", "").upper()
        index = self._by_isrc.get(provider)
        if index is None:
            index = self._by_isrc[provider] = {}
            for t in self.tracks:
                index.setdefault(t.get(provider, "isrc"), []).append(t)
        return [t for t in index.get(isrc, []) if t.known_to(provider)]

    def by_spotify_artist(self, artist_id: str) -> SandboxTrack | None:
        """The first track whose simulated Spotify artist id (``ar`` + 20 id chars) prefixes
        ``artist_id``."""
        if not self._by_artist_prefix:
            for t in self.tracks:
                self._by_artist_prefix.setdefault(f"ar{t.provider_id('spotify')[:20]}", t)
        return self._by_artist_prefix.get(artist_id[:22])

    def search(self, provider: str, text: str, limit: int = 10) -> list[SandboxTrack]:
        """Tracks sharing most query words (at least half of them), best first."""
        wanted = words(text)
        if not wanted:
            return []
        scored = []
        candidates = sorted({i for w in wanted for i in self._postings.get(w, ())})
        for position in candidates:
            track, have = self.tracks[position], self._words[position]
            overlap = len(wanted & have) / len(wanted)
            if overlap >= 0.5 and track.known_to(provider):
                scored.append((overlap, -track.index, track))
        scored.sort(key=lambda item: (item[0], item[1]), reverse=True)
        return [t for _, _, t in scored[:limit]]


# Providers whose ids are integers in their APIs (the shapes serve them as JSON numbers).
_NUMERIC_IDS = frozenset({"deezer", "beatport", "discogs", "tidal"})
_SPOTIFY_ID = re.compile(r"^[0-9A-Za-z]{22}$")


def _check_real_id(line: int, provider: str, value: str) -> None:
    if provider in _NUMERIC_IDS and not value.isdigit():
        raise ValueError(f"catalogue row {line}: {provider}.id must be digits, got {value!r}")
    if provider == "spotify" and not _SPOTIFY_ID.match(value):
        raise ValueError(f"catalogue row {line}: spotify.id must be 22 base-62 characters")
    if provider == "musicbrainz":
        uuid.UUID(value)  # raises ValueError with the offending text


def load_catalogue(source: str | Path | None = None) -> Catalogue:
    """Read a catalogue CSV (lines starting with '#' are comments).

    A ``<provider>.id`` column carries that provider's real id for the row (checked for the
    provider's id form; two rows may not share one)."""
    path = Path(source) if source is not None else DEFAULT_CATALOGUE
    text = "".join(
        line
        for line in path.read_text("utf-8").splitlines(keepends=True)
        if not line.startswith("#")
    )
    tracks = []
    for i, row in enumerate(csv.DictReader(io.StringIO(text))):
        base = {k: (row.get(k) or "").strip() for k in BASE_COLUMNS}
        overrides: dict[str, dict[str, str]] = {}
        for column, value in row.items():
            if column and "." in column and value not in (None, ""):
                provider, _, name = column.partition(".")
                overrides.setdefault(provider.strip(), {})[name.strip()] = value.strip()
        for provider, values in overrides.items():
            if values.get("id"):
                _check_real_id(i + 1, provider, values["id"])
        tracks.append(SandboxTrack(i, base, overrides))
    _check_unique_ids(tracks)
    return Catalogue(tracks)


def _check_unique_ids(tracks: list[SandboxTrack]) -> None:
    owner: dict[tuple[str, str], int] = {}
    for t in tracks:
        for provider, values in t.overrides.items():
            real = values.get("id")
            if real:
                if (provider, real) in owner:
                    raise ValueError(
                        f"catalogue rows {owner[(provider, real)] + 1} and {t.index + 1} share "
                        f"{provider}.id {real!r}"
                    )
                owner[(provider, real)] = t.index
