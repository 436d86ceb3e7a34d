"""TIDAL API v2 (JSON:API, client-credentials token).

``GET /tracks?filter[isrc]=X&countryCode=US&include=artists``,
``GET /searchResults/{query}?countryCode=US&include=tracks`` then the matched tracks by id with
their artists (``filter[id]`` repeated once per id, the SDK's form). Track attributes:
``title``, ``isrc``, ``duration`` (ISO-8601 "PT3M44S"), ``bpm`` (optional), ``key`` +
``keyScale``. 429 carries ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, ClassVar, NotRequired, TypedDict
from urllib.parse import quote

from providers.base import ClientCredentials, HttpProvider
from providers.contract import Candidate, Extracted, Unavailable
from providers.errors import NotFound
from providers.fields import as_bpm, as_duration, as_id, as_isrc, as_key, try_parse
from providers.settings import TidalSettings

__all__ = ["TidalProvider"]

COUNTRY = "US"
_SEARCH_TOP = 5


class TidalTrackAttributes(TypedDict):
    title: str
    isrc: NotRequired[str]
    duration: NotRequired[str]
    bpm: NotRequired[float]
    key: NotRequired[str]
    keyScale: NotRequired[str]


class TidalResource(TypedDict):
    id: str
    type: str
    attributes: NotRequired[dict[str, Any]]
    relationships: NotRequired[dict[str, Any]]


def _artist_names(track: TidalResource, included: list[TidalResource]) -> str:
    names_by_id: dict[str, Any] = {
        r["id"]: (r.get("attributes") or {}).get("name") for r in included if r["type"] == "artists"
    }
    refs = ((track.get("relationships") or {}).get("artists") or {}).get("data") or []
    names = [str(names_by_id.get(ref["id"]) or "") for ref in refs]
    return ", ".join(n for n in names if n)


class TidalProvider(HttpProvider):
    name: ClassVar[str] = "tidal"
    supported_fields: ClassVar[frozenset[str]] = frozenset(
        {"tidal_id", "isrc", "bpm", "key", "duration_ms"}
    )
    settings_class = TidalSettings
    default_headers: ClassVar[Mapping[str, str]] = {"Accept": "application/vnd.api+json"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.auth = ClientCredentials(self)

    def _candidates(self, body: Any) -> list[Candidate]:
        data = body.get("data")
        tracks: list[TidalResource] = data if isinstance(data, list) else [data]
        included: list[TidalResource] = body.get("included") or []
        out = []
        for track in tracks:
            attrs: TidalTrackAttributes = track["attributes"]  # type: ignore[assignment]
            out.append(
                Candidate(
                    artist=_artist_names(track, included),
                    title=str(attrs["title"]),
                    duration_ms=try_parse(as_duration("iso8601"), attrs.get("duration")),
                    isrc=try_parse(as_isrc, attrs.get("isrc")),
                    payload=track,
                )
            )
        return out

    def lookup_by_id(self, provider_id: str) -> Candidate:
        params = {"countryCode": COUNTRY, "include": "artists"}
        return self._candidates(self.auth.get(f"/tracks/{provider_id}", params=params).body)[0]

    def lookup_by_isrc(self, isrc: str) -> list[Candidate]:
        params = {"filter[isrc]": isrc, "countryCode": COUNTRY, "include": "artists"}
        return self._candidates(self.auth.get("/tracks", params=params).body)

    def search(self, artist: str, title: str) -> list[Candidate]:
        query = quote(f"{artist} {title}", safe="")
        params = {"countryCode": COUNTRY, "include": "tracks"}
        try:
            body = self.auth.get(f"/searchResults/{query}", params=params).body
        except NotFound:
            return []
        refs = ((body["data"].get("relationships") or {}).get("tracks") or {}).get("data") or []
        ids = [ref["id"] for ref in refs[:_SEARCH_TOP]]
        if not ids:
            return []
        # Search results do not carry artist names; fetch the top tracks with their artists.
        # A list filter repeats the parameter (filter[id]=1&filter[id]=2), as the official SDK
        # sends it; a comma-joined value is one (unknown) id to the API.
        by_id: dict[str, Any] = {"filter[id]": ids, "countryCode": COUNTRY, "include": "artists"}
        return self._candidates(self.auth.get("/tracks", params=by_id).body)

    def extract(self, payload: Any, fields: Collection[str]) -> dict[str, Extracted | Unavailable]:
        track: TidalResource = payload
        attrs = track.get("attributes") or {}
        key = attrs.get("key")
        key_raw = (
            None
            if key in (None, "", "UNKNOWN")
            else {"key": key, "keyScale": attrs.get("keyScale")}
        )
        return {
            "tidal_id": Extracted(track.get("id"), as_id),
            "isrc": Extracted(attrs.get("isrc"), as_isrc),
            "bpm": Extracted(attrs.get("bpm"), as_bpm),
            "key": Extracted(key_raw, as_key),
            "duration_ms": Extracted(attrs.get("duration"), as_duration("iso8601")),
        }
