"""Deezer public API (no auth for catalogue reads).

Endpoints: ``/search/track``, ``/track/isrc:{isrc}``, ``/track/{id}``, ``/album/{id}`` (genre and
label live on the album). Errors come back in the body, usually with HTTP 200:
``{"error": {"type", "message", "code"}}``; code 4 = quota exceeded, 800 = not found.
``bpm`` 0 means unknown; ``duration`` is in seconds.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, ClassVar, NotRequired, TypedDict, cast

from providers.base import HttpProvider, Reply
from providers.contract import Candidate, Extracted, Unavailable
from providers.errors import AuthError, NotFound, ProviderError, RateLimited, TransientError
from providers.fields import (
    as_bpm,
    as_date,
    as_duration,
    as_genres,
    as_id,
    as_isrc,
    as_name,
    try_parse,
)
from providers.settings import DeezerSettings

__all__ = ["DeezerProvider"]


class DeezerArtist(TypedDict):
    id: int
    name: str


class DeezerAlbumRef(TypedDict):
    id: int
    title: str


class DeezerTrack(TypedDict):
    id: int
    title: str
    duration: int
    artist: DeezerArtist
    album: DeezerAlbumRef
    isrc: NotRequired[str]
    bpm: NotRequired[float]
    release_date: NotRequired[str]


class DeezerAlbum(TypedDict):
    id: int
    label: NotRequired[str]
    genres: NotRequired[dict[str, list[dict[str, Any]]]]


# The documented window is about 50 requests per 5 s.
_QUOTA_WINDOW_S = 5.0
_TRACK_FIELDS = frozenset({"isrc", "bpm", "release_date"})
_ALBUM_FIELDS = frozenset({"genre", "label"})


class DeezerProvider(HttpProvider):
    name: ClassVar[str] = "deezer"
    supported_fields: ClassVar[frozenset[str]] = frozenset(
        {"deezer_id", "isrc", "bpm", "duration_ms", "release_date", "genre", "label"}
    )
    settings_class = DeezerSettings

    def check_reply(self, reply: Reply) -> None:
        body = reply.body
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            err = body["error"]
            code, message = err.get("code"), str(err.get("message", ""))
            if code == 4:
                raise RateLimited(message, retry_after=_QUOTA_WINDOW_S, provider=self.name)
            if code == 800:
                raise NotFound(message, provider=self.name)
            if code == 700:
                raise TransientError(message, provider=self.name)
            if code in (200, 300):
                raise AuthError(message, provider=self.name)
            raise ProviderError(f"error {code}: {message}", provider=self.name)
        super().check_reply(reply)

    def _candidate(self, track: DeezerTrack) -> Candidate:
        return Candidate(
            artist=str(track["artist"]["name"]),
            title=str(track["title"]),
            duration_ms=try_parse(as_duration("s"), track.get("duration")),
            isrc=try_parse(as_isrc, track.get("isrc")),
            payload=track,
        )

    def lookup_by_id(self, provider_id: str) -> Candidate:
        return self._candidate(self.request("GET", f"/track/{provider_id}").body)

    def lookup_by_isrc(self, isrc: str) -> list[Candidate]:
        try:
            return [self._candidate(self.request("GET", f"/track/isrc:{isrc}").body)]
        except NotFound:
            return []

    def search(self, artist: str, title: str) -> list[Candidate]:
        q = f'artist:"{artist}" track:"{title}"'
        body = self.request("GET", "/search/track", params={"q": q, "limit": 10}).body
        return [self._candidate(item) for item in body.get("data", [])]

    def fetch_details(self, candidate: Candidate, fields: Collection[str]) -> Any:
        track: dict[str, Any] = dict(candidate.payload)
        if _TRACK_FIELDS.intersection(fields) and "bpm" not in track:
            track = dict(self.request("GET", f"/track/{track['id']}").body)
        if _ALBUM_FIELDS.intersection(fields):
            track["_album"] = self.request("GET", f"/album/{track['album']['id']}").body
        return track

    def extract(self, payload: Any, fields: Collection[str]) -> dict[str, Extracted | Unavailable]:
        album = cast(DeezerAlbum, payload.get("_album") or {})
        genres = [g.get("name") for g in album.get("genres", {}).get("data", [])]
        return {
            "deezer_id": Extracted(payload.get("id"), as_id),
            "isrc": Extracted(payload.get("isrc"), as_isrc),
            "bpm": Extracted(payload.get("bpm"), as_bpm),
            "duration_ms": Extracted(payload.get("duration"), as_duration("s")),
            "release_date": Extracted(payload.get("release_date"), as_date),
            "genre": Extracted(genres or None, as_genres),
            "label": Extracted(album.get("label"), as_name),
        }
