"""The provider contract: value objects and the abstract ``Provider``.

A provider module implements a few small methods (``lookup_by_id``, ``lookup_by_isrc``,
``search``, ``extract`` and optionally ``fetch_details``); ``Provider.lookup`` is the one template
that turns them into a ``LookupResult``: find the track (id, then ISRC, then artist+title search),
pick the best candidate with ``pipeline.matching.best_match``, extract the requested fields and
normalise each one. A provider id from the query is a hint, not truth (issue 14): when the id
lookup answers 404 (or 400, "not an id") or its track does not match the query's artist and
title, the lookup goes on by ISRC, then search, and ``LookupResult.replaced_id`` records the stale
id, why it was dropped and what replaced it (also carried in the id field's ``raw``). A value
that fails normalisation is put in ``rejected`` with the reason; it is never accepted. HTTP,
limits, retries and the breaker live in ``providers.base.HttpProvider``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pipeline.matching import (
    ACCEPT_THRESHOLD,
    Candidate,
    TrackQuery,
    best_match,
    match_confidence,
)
from pipeline.normalise.bpm import plausible_for
from providers.errors import CapabilityUnavailable, NotFound, RequestRejected

__all__ = [
    "MIN_MATCH_CONFIDENCE",
    "Candidate",
    "Extracted",
    "FieldValue",
    "LookupResult",
    "LookupStatus",
    "Provider",
    "RawResponse",
    "StaleId",
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
    replaced_id: dict[str, Any] | None = None  # StaleId.record(): the query's id, dropped


@dataclass(frozen=True, slots=True)
class StaleId:
    """A provider id from the query that did not hold: unknown there, or another track."""

    provider_id: str
    reason: str

    def record(self, replaced_by: Any, via: str | None) -> dict[str, Any]:
        """What provenance keeps: ``{"stale_id", "reason", "replaced_by", "via"}``."""
        return {
            "stale_id": self.provider_id,
            "reason": self.reason,
            "replaced_by": replaced_by,
            "via": via,
        }


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


# Without a genre, a reading under this for dance music is more often half-time than a real tempo.
_HALF_TIME_SUSPECT_BPM = 80.0
_HALF_TIME_FACTOR = 0.7


def _doubt_factor(field_name: str, value: Any, genres: Any = None) -> float:
    """A BPM outside the tempo of the genre the same answer gives is doubted (a 64 for techno);
    one inside it is not (a 75 for downtempo or hip-hop). Without a genre, under 80 is doubted."""
    if field_name != "bpm" or not isinstance(value, float):
        return 1.0
    plausible = plausible_for(value, genres if isinstance(genres, list) else None)
    if plausible is None:
        return _HALF_TIME_FACTOR if value < _HALF_TIME_SUSPECT_BPM else 1.0
    return 1.0 if plausible else _HALF_TIME_FACTOR


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

    def id_candidates(self, found: Candidate) -> list[Candidate]:
        """What an id lookup's answer may be checked against the query as (default: itself).
        Discogs ids name releases: each tracklist entry is a candidate."""
        return [found]

    # --- the template ---------------------------------------------------------------------------
    def lookup(self, query: TrackQuery, fields: Collection[str]) -> LookupResult:
        """Find ``query`` at this provider and return the requested fields, normalised."""
        wanted = [f for f in fields if f in self.supported_fields]
        if not wanted:
            return LookupResult(
                self.name, "unavailable", unavailable=dict.fromkeys(fields, "unsupported")
            )
        stale: list[StaleId] = []
        try:
            candidate, confidence, via = self._find(query, stale)
        except NotFound:
            result = LookupResult(self.name, "not_found")
            if stale:
                result.replaced_id = stale[0].record(None, None)
                id_field = f"{self.name}_id"
                if id_field in wanted:
                    result.rejected[id_field] = (
                        f"stale id {stale[0].provider_id!r} ({stale[0].reason}); "
                        "no ISRC or search match replaced it"
                    )
            return result
        except CapabilityUnavailable as exc:
            return LookupResult(
                self.name, "unavailable", unavailable=dict.fromkeys(wanted, exc.message)
            )
        payload = self.fetch_details(candidate, wanted)
        result = LookupResult(self.name, "found", match_confidence=confidence)
        extracted = self.extract(payload, wanted)
        # Genre first: the BPM's doubt depends on the genre the same answer gives.
        for name in sorted(wanted, key=lambda n: n != "genre"):
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
            genre = result.values.get("genre")
            factor = item.confidence_factor * _doubt_factor(
                name, value, genre.value if genre is not None else None
            )
            result.values[name] = FieldValue(name, value, round(confidence * factor, 4), item.raw)
        if stale:
            self._note_replacement(result, stale[0], via)
        if not result.values and result.unavailable and not result.rejected:
            result.status = "unavailable"
        return result

    def _note_replacement(self, result: LookupResult, stale: StaleId, via: str | None) -> None:
        id_field = f"{self.name}_id"
        new = result.values.get(id_field)
        result.replaced_id = stale.record(new.value if new else None, via)
        if new is not None:
            # The replacement is the value; the stale id travels in its raw input, which
            # enrichment_transformations keeps as input_value (the field's provenance).
            raw = {"raw": new.raw, "replaces": result.replaced_id}
            result.values[id_field] = FieldValue(id_field, new.value, new.confidence, raw)

    def _id_lookup(self, query: TrackQuery, provider_id: str) -> tuple[Candidate | None, StaleId]:
        """The id's track when it is the query's track, else why the id is stale."""
        try:
            candidate = self.lookup_by_id(provider_id)
        except NotFound as exc:
            return None, StaleId(provider_id, f"id lookup: {exc.message}")
        except RequestRejected as exc:
            return None, StaleId(provider_id, f"id lookup rejected: {exc.message}")
        if not (query.artist and query.title) or not (candidate.artist or candidate.title):
            return candidate, StaleId(provider_id, "")  # nothing to check the id against
        names = TrackQuery(query.artist, query.title)
        picked = best_match(names, self.id_candidates(candidate))
        if picked is not None and picked[1] >= ACCEPT_THRESHOLD:
            return picked[0], StaleId(provider_id, "")
        score = match_confidence(names, candidate)
        return None, StaleId(
            provider_id,
            f"id names another track ({candidate.artist} - {candidate.title}, match {score:.2f})",
        )

    def _find(
        self, query: TrackQuery, stale: list[StaleId]
    ) -> tuple[Candidate, float, str | None]:
        """``(candidate, confidence, how it was found: "id" | "isrc" | "search")``; a stale
        query id is appended to ``stale``."""
        provider_id = query.provider_ids.get(self.name)
        if provider_id:
            found, why = self._id_lookup(query, str(provider_id))
            if found is not None:
                return found, ID_LOOKUP_CONFIDENCE, "id"
            stale.append(why)
        candidates: list[Candidate] = []
        via = None
        if query.isrc:
            candidates, via = self.lookup_by_isrc(query.isrc), "isrc"
        if not candidates and query.artist and query.title:
            candidates, via = self.search(query.artist, query.title), "search"
        picked = best_match(query, candidates) if candidates else None
        if picked is None or picked[1] < MIN_MATCH_CONFIDENCE:
            raise NotFound("no candidate matched", provider=self.name)
        return picked[0], picked[1], via
