"""Discogs API (``Authorization: Discogs token=...``).

``/database/search?type=release&artist=&track=`` finds releases that hold the track (genre/style/
label are per release, not per track), ``/releases/{id}`` gives ``released`` ("YYYY-MM-DD", may be
"YYYY-00-00"), ``labels``, ``genres`` + ``styles`` and the tracklist with "m:ss" durations.
A search item's ``title`` is "Artist - *Release* title": an EP, album or compilation is not
named after the track, so the match is made against the release's tracklist (issue 14): the
top ``_RELEASES_CHECKED`` releases are fetched in order until one lists the track; each
tracklist entry is a candidate (its own ``artists`` on a compilation, else the release's).
Discogs counts a moving 60 s window and reports it in ``X-Discogs-Ratelimit-*`` headers: when
``Remaining`` hits 0 we keep the reply we got but refuse further calls (``RateLimited``) until the
window has room.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Collection
from typing import Any, ClassVar, NotRequired, TypedDict

from pipeline.matching import match_confidence
from providers._http import parse_retry_after
from providers.base import HttpProvider, Reply
from providers.contract import Candidate, Extracted, TrackQuery, Unavailable
from providers.errors import AuthError, RateLimited
from providers.fields import as_date, as_duration, as_genres, as_id, as_name, try_parse
from providers.settings import DiscogsSettings

__all__ = ["DiscogsProvider"]

_WINDOW_S = 60.0
_NUMBERING = re.compile(r"\s+\(\d+\)$")  # Discogs disambiguates artists as "Name (2)"
# Releases fetched per search (one request each, 60 a minute): the first one that lists the
# track at this confidence ends the search.
_RELEASES_CHECKED = 3
_SURE = 0.9


class DiscogsArtist(TypedDict):
    name: str
    join: NotRequired[str]


class DiscogsRelease(TypedDict):
    id: int
    title: str
    artists: list[DiscogsArtist]
    labels: NotRequired[list[dict[str, Any]]]
    genres: NotRequired[list[str]]
    styles: NotRequired[list[str]]
    released: NotRequired[str]
    year: NotRequired[int]
    tracklist: NotRequired[list[dict[str, Any]]]


def _artists(artists: list[DiscogsArtist]) -> str:
    text = ""
    for i, a in enumerate(artists):
        text += _NUMBERING.sub("", a["name"])
        if i < len(artists) - 1:
            join = (a.get("join") or ",").strip()
            text += ", " if join == "," else f" {join} "
    return text


class DiscogsProvider(HttpProvider):
    name: ClassVar[str] = "discogs"
    supported_fields: ClassVar[frozenset[str]] = frozenset(
        {"discogs_id", "release_date", "genre", "label", "artist_name"}
    )
    settings_class = DiscogsSettings
    default_retry_after_s = 5.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._blocked_until = 0.0
        self._lock = threading.Lock()

    def _headers(self) -> dict[str, str]:
        key = self.settings.api_key
        if key is None:
            raise AuthError(
                "SONGNODES_DISCOGS_API_KEY (a personal token) is required", provider=self.name
            )
        return {"Authorization": f"Discogs token={key.get_secret_value()}"}

    def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        wait = self._blocked_until - time.time()
        if wait > 0:
            raise RateLimited(
                "X-Discogs-Ratelimit-Remaining reached 0", retry_after=wait, provider=self.name
            )
        return self.request("GET", path, params=params, headers=self._headers()).body

    def check_reply(self, reply: Reply) -> None:
        limit = reply.headers.get("x-discogs-ratelimit")
        remaining = reply.headers.get("x-discogs-ratelimit-remaining")
        # Without knowing when each counted request leaves the moving window, one slot's
        # share of the window is the best wait estimate.
        per_slot = _WINDOW_S / int(limit) if limit and limit.isdigit() and int(limit) else _WINDOW_S
        if reply.status_code == 429:
            retry_after = parse_retry_after(reply.headers.get("retry-after"), per_slot)
            with self._lock:
                self._blocked_until = max(self._blocked_until, time.time() + retry_after)
            raise RateLimited("HTTP 429", retry_after=retry_after, provider=self.name)
        if remaining is not None and remaining.strip() == "0":
            with self._lock:
                self._blocked_until = max(self._blocked_until, time.time() + per_slot)
        super().check_reply(reply)

    def _candidate(self, item: dict[str, Any]) -> Candidate:
        if "artists" in item:  # a full release
            return Candidate(
                artist=_artists(item["artists"]), title=str(item["title"]), payload=item
            )
        # Search items carry "Artist - Title" in one string.
        artist, _, title = str(item["title"]).partition(" - ")
        return Candidate(artist=_NUMBERING.sub("", artist), title=title or artist, payload=item)

    def lookup_by_id(self, provider_id: str) -> Candidate:
        return self._candidate(self._get(f"/releases/{provider_id}"))

    def lookup_by_isrc(self, isrc: str) -> list[Candidate]:
        return []  # Discogs has no ISRC search

    def search(self, artist: str, title: str) -> list[Candidate]:
        params = {"type": "release", "artist": artist, "track": title, "per_page": 10}
        body = self._get("/database/search", params)
        query = TrackQuery(artist, title)
        candidates: list[Candidate] = []
        for item in (body.get("results") or [])[:_RELEASES_CHECKED]:
            release = self._get(f"/releases/{item['id']}")
            listed = self._tracklist_candidates(release)
            candidates += listed
            if any(match_confidence(query, c) >= _SURE for c in listed):
                break
        return candidates

    def _tracklist_candidates(self, release: DiscogsRelease) -> list[Candidate]:
        """One candidate per track of the release (headings and index entries skipped); the
        payload is the release with the entry under ``_track``."""
        release_artists = _artists(release.get("artists") or [])
        out = []
        for entry in release.get("tracklist") or []:
            if entry.get("type_", "track") != "track" or not entry.get("title"):
                continue
            own = entry.get("artists")
            out.append(
                Candidate(
                    artist=_artists(own) if own else release_artists,
                    title=str(entry["title"]),
                    duration_ms=try_parse(as_duration("clock"), entry.get("duration") or None),
                    payload={**release, "_track": entry},
                )
            )
        return out

    def id_candidates(self, found: Candidate) -> list[Candidate]:
        # A Discogs id names a release: the track is one of its tracklist entries.
        return self._tracklist_candidates(found.payload) or [found]

    def fetch_details(self, candidate: Candidate, fields: Collection[str]) -> Any:
        if "artists" in candidate.payload:
            return candidate.payload
        return self._get(f"/releases/{candidate.payload['id']}")

    def extract(self, payload: Any, fields: Collection[str]) -> dict[str, Extracted | Unavailable]:
        release: DiscogsRelease = payload
        labels = release.get("labels") or []
        genres = [*(release.get("genres") or []), *(release.get("styles") or [])]
        released = release.get("released") or release.get("year") or None
        track = payload.get("_track") or {}
        # A compilation credits each track; the release artist there is "Various".
        artists = track.get("artists") or release["artists"]
        return {
            "discogs_id": Extracted(release.get("id"), as_id),
            "release_date": Extracted(str(released) if released else None, as_date),
            "genre": Extracted(genres or None, as_genres),
            "label": Extracted(_NUMBERING.sub("", labels[0]["name"]) if labels else None, as_name),
            "artist_name": Extracted(_artists(artists), as_name),
        }
