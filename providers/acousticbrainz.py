"""AcousticBrainz-compatible server, by MusicBrainz recording id.

The public service shut down in 2023, so there is no default base URL: the provider is disabled
until ``SONGNODES_ACOUSTICBRAINZ_BASE_URL`` points at a mirror or dump server speaking the old
API. We use its bulk endpoints, ``/low-level?recording_ids=a;b`` (``rhythm.bpm``,
``tonal.key_key`` + ``key_scale``) and ``/high-level?recording_ids=...``
(``highlevel.danceability``, moods), answered as ``{mbid: {"0": document}, "mbid_mapping": {}}``
with unknown ids left out. A task's lookups share one request per 25 recordings
(``HttpProvider.batched``; the old API allowed 10 requests per 10 s); one lookup alone asks for
its one id. There is no "energy" descriptor; we use 1 - P(relaxed) from the mood classifier as a
proxy, at reduced confidence.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, ClassVar, TypedDict

from providers.base import BatchPart, HttpProvider
from providers.contract import Candidate, Extracted, StaleId, TrackQuery, Unavailable
from providers.errors import MalformedResponse, NotFound
from providers.fields import as_bpm, as_key, as_unit_float
from providers.settings import AcousticBrainzSettings

__all__ = ["AcousticBrainzProvider"]

_ENERGY_PROXY_FACTOR = 0.6
_HIGH_LEVEL_FIELDS = frozenset({"energy", "danceability"})
#: Recording ids per bulk request (the old API's limit).
BULK_MAX = 25


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

    @staticmethod
    def _mbid(query: TrackQuery) -> str | None:
        return query.provider_ids.get("acousticbrainz") or query.provider_ids.get("musicbrainz")

    def _find(
        self, query: TrackQuery, stale: list[StaleId]
    ) -> tuple[Candidate, float, str | None]:
        mbid = self._mbid(query)
        if not mbid:
            raise self.capability("needs a MusicBrainz recording id")
        # The id came from MusicBrainz matching; AcousticBrainz adds no identity evidence, and
        # has no ISRC or text search to fall back on.
        return self.lookup_by_id(mbid), 1.0, "id"

    def _document(self, level: str, mbid: str) -> Any:
        """One recording's document from the bulk endpoint (its first submission), or None."""
        body = self.request("GET", f"/{level}", params={"recording_ids": mbid}).body
        mbid = (body.get("mbid_mapping") or {}).get(mbid, mbid)
        return (body.get(mbid) or {}).get("0")

    def lookup_by_id(self, provider_id: str) -> Candidate:
        body: LowLevel | None = self._document("low-level", provider_id)
        if body is None:
            raise NotFound("recording not in AcousticBrainz", provider=self.name)
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
            payload["high"] = self._document("high-level", payload["mbid"])
        return payload

    def batch_parts(
        self, queries: Sequence[TrackQuery], fields: Collection[str]
    ) -> list[BatchPart]:
        """Low-level (and high-level, when asked) documents of every query's recording, one
        bulk request per 25; each id's part is what its own one-id request answers."""
        ids = sorted({m for m in map(self._mbid, queries) if m})
        levels = ["low-level"] + (["high-level"] if _HIGH_LEVEL_FIELDS.intersection(fields) else [])
        parts: list[BatchPart] = []
        for level in levels:
            for start in range(0, len(ids), BULK_MAX):
                chunk = ids[start : start + BULK_MAX]
                reply, batch = self.batch_request(f"/{level}", {"recording_ids": ";".join(chunk)})
                body = reply.body
                if not isinstance(body, dict):
                    raise MalformedResponse("bulk reply is not an object", provider=self.name)
                mapping = body.get("mbid_mapping")
                mapping = mapping if isinstance(mapping, dict) else {}
                for mbid in chunk:
                    # The server answers an id it knows by another spelling under that one
                    # and says so in ``mbid_mapping``; a one-id request would answer the same.
                    key = mapping.get(mbid, mbid)
                    own = {key: body[key]} if key in body else {}
                    mapped = {mbid: key} if key != mbid else {}
                    parts.append(
                        self.part(
                            batch,
                            f"/{level}",
                            {"recording_ids": mbid},
                            own | {"mbid_mapping": mapped},
                        )
                    )
        return parts

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
