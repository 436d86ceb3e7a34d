"""Last.fm (one endpoint, ``method=track.getInfo`` / ``track.getTopTags``, ``api_key``).

Errors arrive as ``{"error": <int>, "message": ...}``, usually with HTTP 200: 29 rate limit,
6 not found, 10 invalid key, 26 suspended key, 11 offline, 16 temporary error. Tags are
folksonomy; ``normalise_genres`` keeps the ones that are genres.

An unknown artist/title pair does not always get error 6: Last.fm answers ``track.getInfo`` with
a *placeholder* track made from the request (no ``mbid``, ``duration`` "0", a play count of a
few scrobbles of the misspelling). All three together are ``not_found`` (issue 14); a real track
without an mbid has a duration or real listening.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, ClassVar, NotRequired, TypedDict

from providers.base import HttpProvider, Reply
from providers.contract import Candidate, Extracted, Unavailable
from providers.errors import AuthError, NotFound, ProviderError, RateLimited, TransientError
from providers.fields import as_count, as_duration, as_genres, try_parse
from providers.settings import LastfmSettings

__all__ = ["LastfmProvider", "is_placeholder_track"]

# Under this many plays, a track with no mbid and no duration is Last.fm echoing the request.
PLACEHOLDER_MAX_PLAYCOUNT = 100


def is_placeholder_track(track: Any) -> bool:
    """Last.fm's stand-in for a track it does not know (see the module docstring)."""
    if not isinstance(track, dict) or track.get("mbid"):
        return False
    duration = str(track.get("duration") or "0").strip()
    try:
        plays = int(str(track.get("playcount") or "0").strip())
    except ValueError:
        return False  # an unreadable count is not "tiny"; let the parser judge it
    return duration in ("", "0") and plays < PLACEHOLDER_MAX_PLAYCOUNT


class LastfmTag(TypedDict):
    name: str


class LastfmTrack(TypedDict):
    name: str
    artist: dict[str, Any]
    mbid: NotRequired[str]
    duration: NotRequired[str]
    playcount: NotRequired[str]
    toptags: NotRequired[dict[str, list[LastfmTag]]]


class LastfmProvider(HttpProvider):
    name: ClassVar[str] = "lastfm"
    supported_fields: ClassVar[frozenset[str]] = frozenset({"genre", "play_count"})
    settings_class = LastfmSettings
    default_retry_after_s = 5.0

    def _call(self, method: str, **params: Any) -> Any:
        key = self.settings.api_key
        if key is None:
            raise AuthError("SONGNODES_LASTFM_API_KEY is required", provider=self.name)
        query = {"method": method, **params, "api_key": key.get_secret_value(), "format": "json"}
        return self.request("GET", "", params=query).body

    def check_reply(self, reply: Reply) -> None:
        body = reply.body
        if isinstance(body, dict) and "error" in body:
            code, message = body.get("error"), str(body.get("message", ""))
            if code == 29:
                raise RateLimited(
                    message, retry_after=self.default_retry_after_s, provider=self.name
                )
            if code == 6:
                raise NotFound(message, provider=self.name)
            if code in (10, 26):
                raise AuthError(f"error {code}: {message}", provider=self.name)
            if code in (11, 16):
                raise TransientError(f"error {code}: {message}", provider=self.name)
            raise ProviderError(f"error {code}: {message}", provider=self.name)
        super().check_reply(reply)

    def _candidate(self, body: Any) -> Candidate:
        track: LastfmTrack = body["track"]
        if is_placeholder_track(track):
            raise NotFound(
                "placeholder track (no mbid, duration 0, playcount "
                f"{track.get('playcount')!r})",
                provider=self.name,
            )
        artist = track["artist"]
        return Candidate(
            artist=str(artist.get("name") if isinstance(artist, dict) else artist),
            title=str(track["name"]),
            # Last.fm sends "0" when it does not know the length.
            duration_ms=try_parse(as_duration("ms"), track.get("duration")) or None,
            payload=track,
        )

    def lookup_by_id(self, provider_id: str) -> Candidate:
        return self._candidate(self._call("track.getInfo", mbid=provider_id))

    def lookup_by_isrc(self, isrc: str) -> list[Candidate]:
        return []  # Last.fm does not index ISRCs

    def search(self, artist: str, title: str) -> list[Candidate]:
        body = self._call("track.getInfo", artist=artist, track=title, autocorrect=1)
        return [self._candidate(body)]

    def fetch_details(self, candidate: Candidate, fields: Collection[str]) -> Any:
        track = dict(candidate.payload)
        tags = (track.get("toptags") or {}).get("tag") or []
        if "genre" in fields and not tags:
            artist = track["artist"]
            body = self._call(
                "track.getTopTags",
                artist=artist.get("name") if isinstance(artist, dict) else artist,
                track=track["name"],
            )
            track["toptags"] = body.get("toptags") or {}
        return track

    def extract(self, payload: Any, fields: Collection[str]) -> dict[str, Extracted | Unavailable]:
        track: LastfmTrack = payload
        tags = (track.get("toptags") or {}).get("tag") or []
        if isinstance(tags, dict):  # a single tag comes back as an object, not a list
            tags = [tags]
        names = [t.get("name") for t in tags if isinstance(t, dict)]
        return {
            "genre": Extracted(names or None, as_genres),
            "play_count": Extracted(track.get("playcount"), as_count),
        }
