"""Scraper providers: ``mixesdb`` and ``1001tracklists`` answer from bronze rows of that source.

They are not HTTP APIs: their values are what our own scrapers stored (MixesDB tracklists often
carry BPM and key; 1001tracklists confirms artist and title). A lookup searches bronze tracks of
that source for the best name match and reports the match confidence, exactly like an HTTP
provider, so the waterfall treats them the same way. They make no API calls and cost nothing.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, ClassVar

from sqlalchemy import text
from sqlalchemy.orm import Session

from pipeline.matching import Candidate, TrackQuery, best_match, split_title
from pipeline.normalise.bpm import parse_bpm
from pipeline.normalise.errors import InvalidValue
from pipeline.normalise.keys import to_camelot
from pipeline.normalise.text import clean_scraped
from providers.contract import FieldValue, LookupResult

__all__ = ["SCRAPER_PROVIDERS", "ScraperProvider", "get_scraper_provider"]


class ScraperProvider:
    """Looks a track up among bronze rows scraped from ``name``."""

    fields_by_source: ClassVar[dict[str, frozenset[str]]] = {
        "mixesdb": frozenset({"artist_name", "track_title", "bpm", "key"}),
        "1001tracklists": frozenset({"artist_name", "track_title", "playlist_context"}),
    }

    def __init__(self, name: str) -> None:
        if name not in self.fields_by_source:
            raise KeyError(f"unknown scraper provider {name!r}")
        self.name = name
        self.supported_fields = self.fields_by_source[name]

    def _candidates(self, session: Session, query: TrackQuery) -> list[Candidate]:
        base, _ = split_title(query.title) if query.title else ("", None)
        rows = session.execute(
            text("""SELECT artist_name, track_title, raw_json, playlist_id
                    FROM bronze_scraped_tracks
                    WHERE source = :src AND artist_name IS NOT NULL AND track_title IS NOT NULL
                      AND lower(track_title) LIKE lower(:prefix) || '%'
                    ORDER BY scraped_at DESC LIMIT 50"""),
            {"src": self.name, "prefix": base[:12].replace("%", "").replace("_", "")},
        ).all()
        # bronze keeps names as sent; candidates are matched on their cleaned form
        return [
            Candidate(
                clean_scraped(r.artist_name) or "", clean_scraped(r.track_title) or "", payload=r
            )
            for r in rows
        ]

    def lookup(self, session: Session, query: TrackQuery, fields: Collection[str]) -> LookupResult:
        wanted = [f for f in fields if f in self.supported_fields]
        best = best_match(query, self._candidates(session, query)) if wanted else None
        if best is None:
            return LookupResult(self.name, "not_found")
        candidate, confidence = best
        row: Any = candidate.payload
        raw = row.raw_json if isinstance(row.raw_json, dict) else {}
        result = LookupResult(self.name, "found", match_confidence=confidence)
        for f in wanted:
            source_value = {
                "artist_name": clean_scraped(row.artist_name),
                "track_title": clean_scraped(row.track_title),
                "bpm": raw.get("bpm"),
                "key": raw.get("key"),
                "playlist_context": str(row.playlist_id) if row.playlist_id else None,
            }.get(f)
            if source_value in (None, ""):
                continue
            try:
                value = (
                    parse_bpm(source_value)
                    if f == "bpm"
                    else to_camelot(source_value)
                    if f == "key"
                    else source_value
                )
            except InvalidValue as exc:
                result.rejected[f] = exc.reason
                continue
            if value is not None:
                result.values[f] = FieldValue(f, value, round(confidence, 2), source_value)
        return result


SCRAPER_PROVIDERS = frozenset(ScraperProvider.fields_by_source)


def get_scraper_provider(name: str) -> ScraperProvider:
    return ScraperProvider(name)
