"""AcousticBrainz-compatible server, by MusicBrainz recording id.

The public service shut down in 2023, so there is no default base URL: the provider is disabled
until ``SONGNODES_ACOUSTICBRAINZ_BASE_URL`` points at a mirror or dump server speaking the old
API: ``/{mbid}/low-level`` (``rhythm.bpm``, ``tonal.key_key`` + ``key_scale``) and
``/{mbid}/high-level`` (``highlevel.danceability``, moods). There is no "energy" descriptor; we
use 1 - P(relaxed) from the mood classifier as a proxy, at reduced confidence.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, ClassVar, TypedDict

from providers.base import HttpProvider
from providers.contract import Candidate, Extracted, TrackQuery, Unavailable
from providers.errors import NotFound
from providers.fields import as_bpm, as_key, as_unit_float
from providers.settings import AcousticBrainzSettings

__all__ = ["AcousticBrainzProvider"]

_ENERGY_PROXY_FACTOR = 0.6
_HIGH_LEVEL_FIELDS = frozenset({"energy", "danceability"})


class LowLevel(TypedDict):
    rhythm: dict[str, Any]
    tonal: dict[str, Any]
    metadata: dict[str, Any]


def _probability(high: dict[str, Any], classifier: str, label: str) -> Any:
    return ((high.get("highlevel") or {}).get(classifier) or {}).get("all", {}).get(label)


class AcousticBrainzProvider(HttpProvider):
    name: ClassVar[str] = "acousticbrainz"
    supported_fields: ClassVar[frozenset[str]] = frozenset({"bpm", "key", "energy", "danceability"})
    settings_class = AcousticBrainzSettings

    def _find(self, query: TrackQuery) -> tuple[Candidate, float]:
        mbid = query.provider_ids.get(self.name) or query.provider_ids.get("musicbrainz")
        if not mbid:
            raise self.capability("needs a MusicBrainz recording id")
        # The id came from MusicBrainz matching; AcousticBrainz adds no identity evidence.
        return self.lookup_by_id(mbid), 1.0

    def lookup_by_id(self, provider_id: str) -> Candidate:
        body: LowLevel = self.request("GET", f"/{provider_id}/low-level").body
        tags = body.get("metadata", {}).get("tags", {})
        artist = (tags.get("artist") or [""])[0]
        title = (tags.get("title") or [""])[0]
        return Candidate(
            artist=str(artist), title=str(title), payload={"mbid": provider_id, "low": body}
        )

    def lookup_by_isrc(self, isrc: str) -> list[Candidate]:
        return []

    def search(self, artist: str, title: str) -> list[Candidate]:
        return []

    def fetch_details(self, candidate: Candidate, fields: Collection[str]) -> Any:
        payload = dict(candidate.payload)
        if _HIGH_LEVEL_FIELDS.intersection(fields):
            try:
                payload["high"] = self.request("GET", f"/{payload['mbid']}/high-level").body
            except NotFound:
                payload["high"] = None
        return payload

    def extract(self, payload: Any, fields: Collection[str]) -> dict[str, Extracted | Unavailable]:
        low: LowLevel = payload["low"]
        tonal = low.get("tonal") or {}
        out: dict[str, Extracted | Unavailable] = {
            "bpm": Extracted((low.get("rhythm") or {}).get("bpm"), as_bpm),
            "key": Extracted(
                {"key_key": tonal.get("key_key"), "key_scale": tonal.get("key_scale")}
                if tonal.get("key_key")
                else None,
                as_key,
            ),
        }
        high = payload.get("high")
        if high is None:
            for name in _HIGH_LEVEL_FIELDS:
                out[name] = Unavailable("no high-level data for this recording")
            return out
        relaxed = _probability(high, "mood_relaxed", "relaxed")
        out["danceability"] = Extracted(
            _probability(high, "danceability", "danceable"), as_unit_float
        )
        out["energy"] = Extracted(
            relaxed,
            lambda p: None if p is None else 1.0 - float(as_unit_float(p) or 0.0),
            confidence_factor=_ENERGY_PROXY_FACTOR,
        )
        return out
