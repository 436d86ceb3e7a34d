"""The provider contract: value objects and the abstract ``Provider``.

A provider module implements a few small methods (``lookup_by_id``, ``lookup_by_isrc``,
``search``, ``extract`` and optionally ``fetch_details``); ``Provider.lookup`` is the one template
that turns them into a ``LookupResult``: find the track (id, then ISRC, then artist+title search),
pick the best candidate with ``pipeline.matching.best_match``, extract the requested fields and
normalise each one. A value that fails normalisation is put in ``rejected`` with the reason; it is
never accepted. HTTP, limits, retries and the breaker live in ``providers.base.HttpProvider``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pipeline.matching import Candidate, TrackQuery, best_match
from providers.errors import CapabilityUnavailable, NotFound

__all__ = [
    "MIN_MATCH_CONFIDENCE",
    "Candidate",
    "Extracted",
    "FieldValue",
    "LookupResult",
    "LookupStatus",
    "Provider",
    "RawResponse",
    "TrackQuery",
    "Unavailable",
]

LookupStatus = Literal["found", "not_found", "unavailable"]

# Below this the best candidate is treated as "no match": reporting a 0.2 match as found would only
# push noise into the transformation log. Anything above is reported with its real confidence and
# the waterfall's per-field threshold decides.
MIN_MATCH_CONFIDENCE = 0.3

# A provider id lookup is authoritative: the id came from this provider earlier.
ID_LOOKUP_CONFIDENCE = 1.0


@dataclass(frozen=True, slots=True)
class FieldValue:
    """One canonical field value and how much we trust it."""

    field: str
    value: Any
    confidence: float
    raw: Any


@dataclass(frozen=True, slots=True)
class RawResponse:
    """One HTTP exchange as stored in bronze (credentials redacted).

    ``calls``: the provider requests it stands for (what ``api_calls`` and cost count). One id's
    part of a batch request (see ``HttpProvider.batched``) is stored as that id's own request;
    the first part used counts the batch request, the others 0.
    """

    endpoint: str
    params: Mapping[str, Any]
    status_code: int | None
    body: Any
    elapsed_ms: float
    api_version: str | None = None
    calls: int = 1


@dataclass(slots=True)
class LookupResult:
    """What one provider said about one track.

    ``unavailable`` (field -> reason) lists requested fields this provider could not serve for us
    (e.g. Spotify audio-features closed to new apps): not an error, not worth retrying.
    """

    provider: str
    status: LookupStatus
    values: dict[str, FieldValue] = field(default_factory=dict)
    match_confidence: float = 0.0
    responses: list[RawResponse] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Extracted:
    """A raw value pulled from a payload plus the parser that makes it canonical.

    ``parse`` may return None (the provider says "unknown", e.g. Deezer bpm 0) or raise
    (``InvalidValue``/``ValueError``/``TypeError``) to reject the value. ``confidence_factor``
    lowers the match confidence for a value the provider itself marks as doubtful.
    """

    raw: Any
    parse: Callable[[Any], Any]
    confidence_factor: float = 1.0


@dataclass(frozen=True, slots=True)
class Unavailable:
    """Marks a field the provider cannot serve for us (see ``LookupResult.unavailable``)."""

    reason: str


# A reading under this for dance music is more often half-time than a real tempo.
_HALF_TIME_SUSPECT_BPM = 80.0
_HALF_TIME_FACTOR = 0.7


def _doubt_factor(field_name: str, value: Any) -> float:
    if field_name == "bpm" and isinstance(value, float) and value < _HALF_TIME_SUSPECT_BPM:
        return _HALF_TIME_FACTOR
    return 1.0


class Provider(abc.ABC):
    """Abstract provider. Subclasses set ``name`` and ``supported_fields``."""

    name: ClassVar[str]
    supported_fields: ClassVar[frozenset[str]]

    # --- what subclasses implement -------------------------------------------------------------
    @abc.abstractmethod
    def lookup_by_id(self, provider_id: str) -> Candidate:
        """Fetch one track by this provider's id; raise NotFound if unknown."""

    @abc.abstractmethod
    def lookup_by_isrc(self, isrc: str) -> list[Candidate]:
        """Tracks carrying this ISRC (may be empty)."""

    @abc.abstractmethod
    def search(self, artist: str, title: str) -> list[Candidate]:
        """Text search; candidates for ``best_match``."""

    @abc.abstractmethod
    def extract(self, payload: Any, fields: Collection[str]) -> dict[str, Extracted | Unavailable]:
        """Pull the requested fields out of the matched payload (no normalisation here)."""

    def fetch_details(self, candidate: Candidate, fields: Collection[str]) -> Any:
        """Extra requests needed for ``fields`` after a match (default: none)."""
        return candidate.payload

    # --- the template ---------------------------------------------------------------------------
    def lookup(self, query: TrackQuery, fields: Collection[str]) -> LookupResult:
        """Find ``query`` at this provider and return the requested fields, normalised."""
        wanted = [f for f in fields if f in self.supported_fields]
        if not wanted:
            return LookupResult(
                self.name, "unavailable", unavailable=dict.fromkeys(fields, "unsupported")
            )
        try:
            candidate, confidence = self._find(query)
        except NotFound:
            return LookupResult(self.name, "not_found")
        except CapabilityUnavailable as exc:
            return LookupResult(
                self.name, "unavailable", unavailable=dict.fromkeys(wanted, exc.message)
            )
        payload = self.fetch_details(candidate, wanted)
        result = LookupResult(self.name, "found", match_confidence=confidence)
        extracted = self.extract(payload, wanted)
        for name in wanted:
            item = extracted.get(name)
            if item is None:
                continue
            if isinstance(item, Unavailable):
                result.unavailable[name] = item.reason
                continue
            try:
                value = item.parse(item.raw)
            except (ValueError, TypeError, ArithmeticError, KeyError) as exc:
                # pipeline.normalise.InvalidValue is a ValueError; its str() carries the reason.
                result.rejected[name] = f"{type(exc).__name__}: {exc}"
                continue
            if value is None:
                continue
            factor = item.confidence_factor * _doubt_factor(name, value)
            result.values[name] = FieldValue(name, value, round(confidence * factor, 4), item.raw)
        if not result.values and result.unavailable and not result.rejected:
            result.status = "unavailable"
        return result

    def _find(self, query: TrackQuery) -> tuple[Candidate, float]:
        provider_id = query.provider_ids.get(self.name)
        if provider_id:
            return self.lookup_by_id(provider_id), ID_LOOKUP_CONFIDENCE
        candidates: list[Candidate] = []
        if query.isrc:
            candidates = self.lookup_by_isrc(query.isrc)
        if not candidates and query.artist and query.title:
            candidates = self.search(query.artist, query.title)
        picked = best_match(query, candidates) if candidates else None
        if picked is None or picked[1] < MIN_MATCH_CONFIDENCE:
            raise NotFound("no candidate matched", provider=self.name)
        return picked[0], picked[1]
