"""Re-ask a provider from its stored exchanges with a *different* query, strictly.

When a proposal asks a provider with another query than history did (a later round knows an
ISRC or a provider id the stored lookup did not), the stored answer cannot simply be reused. The
provider's own code is run on the stored exchanges (as stored replay does, no HTTP), and each
request it makes must be answered by a stored exchange of the same method, path and parameters.
Unlike stored replay's answerer (which may hand a same-path exchange to a request whose
parameters differ, because a replay repeats the original query), nothing is ever substituted:
one unanswered request, even an optional one, makes the whole answer unknown.
"""

from __future__ import annotations

import contextvars
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import text
from sqlalchemy.orm import Session

from pipeline.matching import TrackQuery
from pipeline.scraper_providers import SCRAPER_PROVIDERS
from pipeline.stored_answers import (
    StoredExchange,
    offline_provider,
    params_match,
    stored_exchange,
)
from pipeline.waterfall import Outcome
from providers.base import CannedReply
from providers.errors import NotAnswered, ProviderError

__all__ = ["Reasked", "StoredExchanges", "reask"]


@dataclass
class Reasked:
    """The answer the provider's code derives from stored exchanges, or ``known=False``."""

    known: bool
    outcomes: list[Outcome] = field(default_factory=list)
    calls: int = 0
    why: str = ""


@dataclass
class _Ask:
    stored: list[StoredExchange]
    hits: int = 0
    missed: str | None = None


_current: contextvars.ContextVar[_Ask | None] = contextvars.ContextVar(
    "songnodes_whatif_ask", default=None
)


def _strict_answer(method: str, url: str, params: Mapping[str, Any] | None) -> CannedReply:
    ask = _current.get()
    if ask is None:
        raise NotAnswered("what-if answerer used outside a simulation")
    parts = urlsplit(url)
    asked = dict(httpx.QueryParams(parts.query).merge(params or {}).multi_items())
    hits = [
        s
        for s in ask.stored
        if s.method == method and s.path == parts.path and params_match(s.params, asked)
    ]
    if not hits and method == "POST" and "token" in parts.path:
        # A token request carries no answer about the track (the live lookup may have reused a
        # cached token); answering it costs nothing and guesses nothing.
        return CannedReply(200, {"access_token": "whatif", "expires_in": 3600})
    if not hits:
        ask.missed = f"{method} {parts.path} was never asked with these parameters"
        raise NotAnswered(ask.missed)
    hits.sort(key=lambda s: (s.used, s.status in (0, 408, 429, 500, 502, 503, 504)))
    hit = hits[0]
    hit.used = True
    ask.hits += 1
    body = hit.body
    if isinstance(body, dict) and set(body) == {"_text"}:
        return CannedReply(hit.status or 200, body, is_json=False)
    return CannedReply(hit.status or 200, body)


def _provider(name: str) -> Any:
    """One client per provider answered by :func:`_strict_answer`, built as stored replay
    builds its own (``pipeline.stored_answers.offline_provider``: dummy credentials, no
    breaker, one attempt); a separate instance because that one's answerer substitutes
    exchanges."""
    return offline_provider(name, _strict_answer, "stored.whatif", "whatif")


class StoredExchanges:
    """Stored exchanges per (run, bronze, provider), read on first need and kept."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._cache: dict[tuple[str, str, str], list[tuple[str, Any, Any, Any]]] = {}

    def get(self, run_id: str, bronze_id: str, provider: str) -> list[StoredExchange]:
        key = (run_id, bronze_id, provider)
        rows = self._cache.get(key)
        if rows is None:
            rows = [
                (r.api_endpoint, r.request_params, r.response_status, r.raw_response)
                for r in self.session.execute(
                    text(
                        "SELECT api_endpoint, request_params, response_status, raw_response "
                        "FROM bronze_api_enrichments WHERE run_id = :run AND "
                        "bronze_track_id = :b AND api_provider = :p ORDER BY fetched_at, created_at"
                    ),
                    {"run": run_id, "b": bronze_id, "p": provider},
                )
            ]
            self._cache[key] = rows
        return [stored_exchange(*r) for r in rows]  # fresh ``used`` flags for each ask


def _as_outcomes(provider: str, fields: Collection[str], result: Any) -> list[Outcome]:
    out = []
    for f in fields:
        value = result.values.get(f)
        if value is None:
            out.append(Outcome(provider, f, None, None, False))
        else:  # as recorded live: confidence rounded to 2 places (``_transformation_rows``)
            out.append(Outcome(provider, f, value.value, round(float(value.confidence), 2), True))
    return out


def reask(
    session: Session,
    exchanges: StoredExchanges,
    provider: str,
    query: TrackQuery,
    fields: Collection[str],
    source: tuple[str, str] | None,
    history: Collection[Outcome] = (),
) -> Reasked:
    """``provider``'s answer to ``query`` for ``fields`` from the exchanges stored by the lookup
    ``source`` = (run id, bronze id), whose outcomes were ``history``; unknown when a request it
    makes was never stored (an optional one only where history had no value either)."""
    if provider in SCRAPER_PROVIDERS:
        # Scraper providers answer from bronze itself, which is the history: ask it again.
        from pipeline.scraper_providers import ScraperProvider

        result = ScraperProvider(provider).lookup(session, query, list(fields))
        return Reasked(True, _as_outcomes(provider, fields, result), 0)
    if source is None:
        return Reasked(False, why=f"{provider} was never asked about this track")
    stored = exchanges.get(source[0], source[1], provider)
    if not stored:
        return Reasked(False, why=f"{provider} stored no exchange for this track")
    ask = _Ask(stored)
    token = _current.set(ask)
    try:
        result = _provider(provider).lookup(query, list(fields))
    except ProviderError as exc:
        return Reasked(False, why=ask.missed or f"{type(exc).__name__}: {exc}")
    finally:
        _current.reset(token)
    if ask.missed:
        # The request was optional (the provider went on without it, e.g. Spotify's audio
        # features, marking their fields unavailable). That is what history says only if the
        # stored lookup was asked those fields and had no value for them either.
        before = {o.field: o.success for o in history}
        lacking = set(result.unavailable) | {f for f in fields if f not in result.values}
        if not all(before.get(f) is False for f in lacking & set(result.unavailable)):
            return Reasked(False, why=ask.missed)
    return Reasked(True, _as_outcomes(provider, fields, result), ask.hits)
