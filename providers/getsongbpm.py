"""GetSongBPM (``api_key`` parameter; 3000 requests/hour, key blocked for an hour beyond).

``/search/?type=both&lookup=song:<title> artist:<artist>`` and ``/song/?id=``. Songs carry
``tempo`` (a string), ``key_of`` ("Em") and ``open_key`` ("2m"), and artist ``genres``.
An empty search is ``{"search": {"error": "no result"}}``.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, ClassVar, NotRequired, TypedDict

from providers.base import HttpProvider, Reply
from providers.contract import Candidate, Extracted, Unavailable
from providers.errors import AuthError, NotFound, ProviderError
from providers.fields import as_bpm, as_genres, as_key
from providers.settings import GetSongBpmSettings

__all__ = ["GetSongBpmProvider"]


class GsbArtist(TypedDict):
    name: str
    genres: NotRequired[list[str] | None]


class GsbSong(TypedDict):
    id: str
    title: str
    artist: GsbArtist
    tempo: NotRequired[str]
    key_of: NotRequired[str]
    open_key: NotRequired[str]


class GetSongBpmProvider(HttpProvider):
    name: ClassVar[str] = "getsongbpm"
    supported_fields: ClassVar[frozenset[str]] = frozenset({"bpm", "key", "genre"})
    settings_class = GetSongBpmSettings

    def _get(self, path: str, **params: Any) -> Any:
        key = self.settings.api_key
        if key is None:
            raise AuthError("SONGNODES_GETSONGBPM_API_KEY is required", provider=self.name)
        return self.request("GET", path, params={**params, "api_key": key.get_secret_value()}).body

    def check_reply(self, reply: Reply) -> None:
        body = reply.body
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            message = body["error"]
            if "key" in message.lower():
                raise AuthError(message, provider=self.name)
            raise ProviderError(message, provider=self.name)
        super().check_reply(reply)

    @staticmethod
    def _candidate(song: GsbSong) -> Candidate:
        return Candidate(artist=str(song["artist"]["name"]), title=str(song["title"]), payload=song)

    def lookup_by_id(self, provider_id: str) -> Candidate:
        body = self._get("/song/", id=provider_id)
        song = body.get("song")
        if not isinstance(song, dict):
            raise NotFound("no song", provider=self.name)
        return self._candidate(song)  # type: ignore[arg-type]

    def lookup_by_isrc(self, isrc: str) -> list[Candidate]:
        return []

    def search(self, artist: str, title: str) -> list[Candidate]:
        body = self._get("/search/", type="both", lookup=f"song:{title} artist:{artist}")
        results = body.get("search")
        if not isinstance(results, list):  # {"error": "no result"}
            return []
        return [self._candidate(s) for s in results[:10]]

    def fetch_details(self, candidate: Candidate, fields: Collection[str]) -> Any:
        if "tempo" in candidate.payload:
            return candidate.payload
        return self.lookup_by_id(str(candidate.payload["id"])).payload

    def extract(self, payload: Any, fields: Collection[str]) -> dict[str, Extracted | Unavailable]:
        song: GsbSong = payload
        raw: dict[str, Any] = dict(song)
        key_fields = {k: raw[k] for k in ("key_of", "open_key") if raw.get(k)}
        return {
            "bpm": Extracted(song.get("tempo"), as_bpm),
            "key": Extracted(key_fields or None, as_key),
            "genre": Extracted(song.get("artist", {}).get("genres") or None, as_genres),
        }
