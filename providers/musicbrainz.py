"""MusicBrainz WS/2 (JSON; no key, but a meaningful User-Agent is required).

``/isrc/{isrc}``, ``/recording?query=<Lucene>``, ``/recording/{mbid}?inc=...``. Recordings carry
``isrcs`` (a list: the old client read ``isrc`` and never found one), ``length`` in ms,
``first-release-date`` and ``genres``. Over the limit (1 req/s per IP) MusicBrainz answers 503,
sometimes 429: both are rate-limit signals here, ``Retry-After`` honoured when present.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any, ClassVar, NotRequired, TypedDict

from providers._http import parse_retry_after
from providers.base import HttpProvider, Reply
from providers.contract import Candidate, Extracted, Unavailable
from providers.errors import NotFound, RateLimited
from providers.fields import (
    as_date,
    as_duration,
    as_genres,
    as_id,
    as_isrc,
    as_name,
    as_text,
    try_parse,
)
from providers.settings import MusicBrainzSettings

__all__ = ["MusicBrainzProvider", "lucene_phrase"]

_INC = "isrcs+artist-credits+releases+genres"
_LUCENE_SPECIAL = re.compile(r'([+\-&|!(){}\[\]^"~*?:\\/])')


class ArtistCredit(TypedDict):
    name: str
    joinphrase: NotRequired[str]


class Recording(TypedDict):
    id: str
    title: str
    length: NotRequired[int | None]
    isrcs: NotRequired[list[str]]
    genres: NotRequired[list[dict[str, Any]]]


def lucene_phrase(text: str) -> str:
    """A quoted Lucene phrase with special characters escaped."""
    return '"' + _LUCENE_SPECIAL.sub(r"\\\1", text) + '"'


def _credit(recording: dict[str, Any]) -> str:
    credits: list[ArtistCredit] = recording.get("artist-credit") or []
    return "".join(f"{c['name']}{c.get('joinphrase', '')}" for c in credits)


class MusicBrainzProvider(HttpProvider):
    name: ClassVar[str] = "musicbrainz"
    supported_fields: ClassVar[frozenset[str]] = frozenset(
        {"musicbrainz_id", "isrc", "release_date", "duration_ms", "artist_name", "track_title"}
        | {"genre"}
    )
    settings_class = MusicBrainzSettings

    def check_reply(self, reply: Reply) -> None:
        if reply.status_code in (429, 503):
            retry_after = parse_retry_after(
                reply.headers.get("retry-after"), self.default_retry_after_s
            )
            raise RateLimited(
                f"HTTP {reply.status_code}", retry_after=retry_after, provider=self.name
            )
        super().check_reply(reply)

    def _get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={**params, "fmt": "json"}).body

    def _candidate(self, rec: dict[str, Any], isrc: str | None = None) -> Candidate:
        isrcs = rec.get("isrcs") or []
        return Candidate(
            artist=_credit(rec),
            title=str(rec["title"]),
            duration_ms=try_parse(as_duration("ms"), rec.get("length")),
            isrc=isrc or try_parse(as_isrc, isrcs[0] if isrcs else None),
            payload=rec,
        )

    def lookup_by_id(self, provider_id: str) -> Candidate:
        return self._candidate(self._get(f"/recording/{provider_id}", inc=_INC))

    def lookup_by_isrc(self, isrc: str) -> list[Candidate]:
        try:
            body = self._get(f"/isrc/{isrc}", inc="artist-credits+releases+isrcs")
        except NotFound:
            return []
        return [self._candidate(r, isrc) for r in body.get("recordings", [])]

    def search(self, artist: str, title: str) -> list[Candidate]:
        query = f"recording:{lucene_phrase(title)} AND artist:{lucene_phrase(artist)}"
        body = self._get("/recording", query=query, limit=10)
        return [self._candidate(r) for r in body.get("recordings", [])]

    def fetch_details(self, candidate: Candidate, fields: Collection[str]) -> Any:
        rec = candidate.payload
        needs_full = ("genre" in fields and "genres" not in rec) or (
            "isrc" in fields and "isrcs" not in rec
        )
        if needs_full:
            rec = self._get(f"/recording/{rec['id']}", inc=_INC)
        return {"recording": rec, "isrc": candidate.isrc}

    def extract(self, payload: Any, fields: Collection[str]) -> dict[str, Extracted | Unavailable]:
        rec: Recording = payload["recording"]
        isrcs = rec.get("isrcs") or []
        # Prefer the ISRC we matched on; otherwise the first one listed.
        isrc = (
            payload.get("isrc") if payload.get("isrc") in isrcs else (isrcs[0] if isrcs else None)
        )
        genres = [g.get("name") for g in rec.get("genres") or []]
        return {
            "musicbrainz_id": Extracted(rec.get("id"), as_id),
            "isrc": Extracted(isrc, as_isrc),
            "release_date": Extracted(payload["recording"].get("first-release-date"), as_date),
            "duration_ms": Extracted(rec.get("length"), as_duration("ms")),
            "artist_name": Extracted(_credit(payload["recording"]), as_name),
            "track_title": Extracted(rec.get("title"), as_text),
            "genre": Extracted(genres or None, as_genres),
        }
