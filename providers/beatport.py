"""Beatport API v4 (partner OAuth2; bearer token from a configurable token URL).

``GET /catalog/search/?q=&type=tracks`` -> ``{"tracks": [...]}``, ``GET /catalog/tracks/{id}/``,
``GET /catalog/tracks/?isrc=`` -> ``{"results": [...]}``. Tracks carry ``bpm`` (int, sometimes a
half-time reading), the ``key`` object (``camelot_number``/``camelot_letter``/``name``),
``genre``/``sub_genre``, ``isrc``, ``length_ms``, ``release.label`` and ``publish_date``.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, ClassVar, NotRequired, TypedDict

from providers.base import ClientCredentials, HttpProvider
from providers.contract import Candidate, Extracted, Unavailable
from providers.fields import (
    as_bpm,
    as_date,
    as_duration,
    as_genres,
    as_id,
    as_isrc,
    as_key,
    as_name,
    try_parse,
)
from providers.settings import BeatportSettings

__all__ = ["BeatportProvider"]

# Version names that do not distinguish a recording from its plain release.
_NEUTRAL_MIXES = frozenset({"", "original mix", "extended mix", "original"})


class BeatportNamed(TypedDict):
    id: int
    name: str


class BeatportKey(TypedDict):
    name: str
    camelot_number: int
    camelot_letter: str


class BeatportRelease(TypedDict):
    id: int
    name: str
    label: NotRequired[BeatportNamed]


class BeatportTrack(TypedDict):
    id: int
    name: str
    mix_name: NotRequired[str]
    artists: list[BeatportNamed]
    bpm: NotRequired[int]
    key: NotRequired[BeatportKey | None]
    genre: NotRequired[BeatportNamed | None]
    sub_genre: NotRequired[BeatportNamed | None]
    isrc: NotRequired[str]
    length_ms: NotRequired[int]
    publish_date: NotRequired[str]
    new_release_date: NotRequired[str]
    release: NotRequired[BeatportRelease]


class BeatportProvider(HttpProvider):
    name: ClassVar[str] = "beatport"
    supported_fields: ClassVar[frozenset[str]] = frozenset(
        {"beatport_id", "bpm", "key", "genre", "release_date", "isrc", "duration_ms", "label"}
    )
    settings_class = BeatportSettings
    api_version = "v4"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.auth = ClientCredentials(self)

    @staticmethod
    def _candidate(track: BeatportTrack) -> Candidate:
        mix = str(track.get("mix_name") or "")
        title = str(track["name"])
        if mix.strip().lower() not in _NEUTRAL_MIXES:
            title = f"{title} ({mix})"
        return Candidate(
            artist=", ".join(a["name"] for a in track["artists"]),
            title=title,
            duration_ms=try_parse(as_duration("ms"), track.get("length_ms")),
            isrc=try_parse(as_isrc, track.get("isrc")),
            payload=track,
        )

    def lookup_by_id(self, provider_id: str) -> Candidate:
        return self._candidate(self.auth.get(f"/catalog/tracks/{provider_id}/").body)

    def lookup_by_isrc(self, isrc: str) -> list[Candidate]:
        body = self.auth.get("/catalog/tracks/", params={"isrc": isrc}).body
        return [self._candidate(t) for t in body.get("results", [])]

    def search(self, artist: str, title: str) -> list[Candidate]:
        params = {"q": f"{artist} {title}", "type": "tracks", "per_page": 10}
        body = self.auth.get("/catalog/search/", params=params).body
        return [self._candidate(t) for t in body.get("tracks", [])]

    def extract(self, payload: Any, fields: Collection[str]) -> dict[str, Extracted | Unavailable]:
        track: BeatportTrack = payload
        genres = [g["name"] for g in (track.get("genre"), track.get("sub_genre")) if g]
        release: dict[str, Any] = dict(track.get("release") or {})
        label: dict[str, Any] = dict(release.get("label") or {})
        return {
            "beatport_id": Extracted(track.get("id"), as_id),
            "bpm": Extracted(track.get("bpm"), as_bpm),
            "key": Extracted(track.get("key"), as_key),
            "genre": Extracted(genres or None, as_genres),
            "release_date": Extracted(
                track.get("publish_date") or track.get("new_release_date"), as_date
            ),
            "isrc": Extracted(track.get("isrc"), as_isrc),
            "duration_ms": Extracted(track.get("length_ms"), as_duration("ms")),
            "label": Extracted(label.get("name"), as_name),
        }
