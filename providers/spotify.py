"""Spotify Web API (client-credentials token).

Search is ``GET /search?type=track`` with ``limit`` at most 10 (Development Mode since Feb 2026);
ISRC lookup is ``q=isrc:X``; one track is ``GET /tracks/{id}``. Audio features are a capability:
new apps get 403/404 there since 2024-11-27, which makes bpm/key/energy/valence/danceability
*unavailable* while the identity fields are still returned. Genres come from the first artist.
A 429 carries ``Retry-After`` and possibly ``{"error": {"reason": "QUOTA_EXCEEDED"}}``.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import Any, ClassVar, NotRequired, TypedDict

from providers.base import ClientCredentials, HttpProvider, Reply
from providers.contract import Candidate, Extracted, Unavailable
from providers.errors import AuthError, CapabilityUnavailable, NotFound, RateLimited
from providers.fields import (
    as_bpm,
    as_date_with_precision,
    as_duration,
    as_genres,
    as_id,
    as_isrc,
    as_key,
    as_name,
    as_text,
    as_unit_float,
    try_parse,
)
from providers.settings import SpotifySettings

__all__ = ["SpotifyProvider"]

SEARCH_LIMIT = 10  # the Development Mode maximum


class SpotifyArtistRef(TypedDict):
    id: str
    name: str


class SpotifyAlbum(TypedDict):
    id: str
    name: str
    release_date: NotRequired[str]
    release_date_precision: NotRequired[str]


class SpotifyTrack(TypedDict):
    id: str
    name: str
    artists: list[SpotifyArtistRef]
    album: SpotifyAlbum
    duration_ms: int
    external_ids: NotRequired[dict[str, str]]


class SpotifyAudioFeatures(TypedDict):
    tempo: float
    key: int
    mode: int
    energy: float
    valence: float
    danceability: float


_AUDIO_FIELDS = frozenset({"bpm", "key", "energy", "valence", "danceability"})


class SpotifyProvider(HttpProvider):
    name: ClassVar[str] = "spotify"
    supported_fields: ClassVar[frozenset[str]] = frozenset(
        {"spotify_id", "isrc", "release_date", "duration_ms", "bpm", "key", "energy", "valence"}
        | {"danceability", "genre", "artist_name", "track_title"}
    )
    settings_class = SpotifySettings

    settings: SpotifySettings

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.auth = ClientCredentials(self)
        # monotonic time of the last 403 on audio-features (per process; see the setting).
        self._features_closed_at: float | None = None

    def _features_closed(self) -> bool:
        """Audio features answered 403 recently: do not spend a request on them. Never while
        answering from stored exchanges: a replay repeats exactly what was requested."""
        closed = self._features_closed_at
        return (
            self.answerer is None
            and closed is not None
            and time.monotonic() - closed < self.settings.audio_features_recheck_s
        )

    def check_reply(self, reply: Reply) -> None:
        if reply.status_code == 429:
            try:
                super().check_reply(reply)
            except RateLimited as exc:
                err = reply.body.get("error") if isinstance(reply.body, dict) else None
                if isinstance(err, dict) and err.get("reason"):
                    exc.message = f"HTTP 429 {err['reason']}"
                raise
        super().check_reply(reply)

    def _candidate(self, track: SpotifyTrack) -> Candidate:
        return Candidate(
            artist=", ".join(a["name"] for a in track["artists"]),
            title=str(track["name"]),
            duration_ms=try_parse(as_duration("ms"), track.get("duration_ms")),
            isrc=try_parse(as_isrc, (track.get("external_ids") or {}).get("isrc")),
            payload=track,
        )

    def _search(self, q: str) -> list[Candidate]:
        params = {"q": q, "type": "track", "limit": SEARCH_LIMIT}
        body = self.auth.get("/search", params=params).body
        return [self._candidate(t) for t in body["tracks"]["items"]]

    def lookup_by_id(self, provider_id: str) -> Candidate:
        return self._candidate(self.auth.get(f"/tracks/{provider_id}").body)

    def lookup_by_isrc(self, isrc: str) -> list[Candidate]:
        return self._search(f"isrc:{isrc}")

    def search(self, artist: str, title: str) -> list[Candidate]:
        # Quotes inside a quoted field would end it early.
        return self._search(
            f'track:"{title.replace(chr(34), " ")}" artist:"{artist.replace(chr(34), " ")}"'
        )

    def fetch_details(self, candidate: Candidate, fields: Collection[str]) -> Any:
        track: dict[str, Any] = {"track": candidate.payload}
        track_id = candidate.payload["id"]
        if _AUDIO_FIELDS.intersection(fields) and self._features_closed():
            track["audio_features_unavailable"] = "audio-features closed (HTTP 403, not re-asked)"
        elif _AUDIO_FIELDS.intersection(fields):
            try:
                track["audio_features"] = self.auth.get(
                    f"/audio-features/{track_id}", optional=True
                ).body
            except (AuthError, NotFound, CapabilityUnavailable) as exc:
                if exc.message == "HTTP 401":
                    raise
                if exc.message == "HTTP 403":
                    self._features_closed_at = time.monotonic()
                track["audio_features_unavailable"] = f"audio-features closed ({exc.message})"
        if "genre" in fields and candidate.payload.get("artists"):
            artist_id = candidate.payload["artists"][0]["id"]
            track["artist"] = self.auth.get(f"/artists/{artist_id}").body
        return track

    def extract(self, payload: Any, fields: Collection[str]) -> dict[str, Extracted | Unavailable]:
        track: SpotifyTrack = payload["track"]
        album = track.get("album") or {}
        out: dict[str, Extracted | Unavailable] = {
            "spotify_id": Extracted(track.get("id"), as_id),
            "isrc": Extracted((track.get("external_ids") or {}).get("isrc"), as_isrc),
            "release_date": Extracted(
                album.get("release_date"),
                as_date_with_precision(album.get("release_date_precision")),
            ),
            "duration_ms": Extracted(track.get("duration_ms"), as_duration("ms")),
            "artist_name": Extracted(", ".join(a["name"] for a in track["artists"]), as_name),
            "track_title": Extracted(track.get("name"), as_text),
        }
        artist = payload.get("artist")
        if isinstance(artist, dict) and artist.get("genres"):
            out["genre"] = Extracted(artist["genres"], as_genres)
        unavailable = payload.get("audio_features_unavailable")
        features: SpotifyAudioFeatures | None = payload.get("audio_features")
        for name in _AUDIO_FIELDS:
            if unavailable:
                out[name] = Unavailable(unavailable)
        if features is not None:
            out["bpm"] = Extracted(features.get("tempo"), as_bpm)
            key = {"key": features.get("key"), "mode": features.get("mode")}
            # Spotify's key -1 means "no key detected": unknown, not a bad value.
            out["key"] = Extracted(key, lambda k: None if k["key"] == -1 else as_key(k))
            for name in ("energy", "valence", "danceability"):
                out[name] = Extracted(features.get(name), as_unit_float)
        return out
