"""Stored answers: a lookup re-run on the raw responses ``bronze_api_enrichments`` keeps.

Stored replay (``pipeline.replay``) and the what-if simulation (``pipeline.whatif.stored``) run
each provider's own parsing code on what the provider once answered, with no HTTP: the
provider client is built with an answerer (``providers.exchange.CannedExchange``) that serves
each request from the stored exchanges of the lookup (:func:`offline_provider`).

* :func:`load_stored_many`: per bronze track, the newest stored exchange set of a provider from
  an earlier run, for a batch in one query; :func:`stored_exchange` turns one row into a
  :class:`StoredExchange`.
* :func:`stored_answer`: replay's answerer. A request is answered by a stored exchange of the
  same method and path whose parameters match (:func:`params_match`: redacted values match
  anything), else by an unused one of the same path (a replay repeats the original query),
  preferring the answer the original lookup acted on. Nothing matching: :class:`NoStoredResponse`.
* :func:`stored_lookup` / :func:`stored_outcomes`: a lookup (a batch) answered that way; the
  result carries no responses, so nothing is appended to bronze and it costs zero calls.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import text
from sqlalchemy.orm import Session

from pipeline.lookups.outcome import LookupInput, LookupOutcome
from pipeline.scraper_providers import SCRAPER_PROVIDERS
from providers.contract import LookupResult, Provider
from providers.errors import NotAnswered, ProviderError, TransientError
from providers.exchange import Answerer, CannedReply

__all__ = [
    "NoStoredResponse",
    "StoredExchange",
    "load_stored_many",
    "offline_provider",
    "params_match",
    "parse_stored",
    "stored_answer",
    "stored_exchange",
    "stored_lookup",
    "stored_outcomes",
    "stored_provider",
]

class NoStoredResponse(NotAnswered):
    """A stored replay asked for something no stored response answers (never a live call)."""


@dataclass
class StoredExchange:
    """One stored request/response; ``used`` once an answer handed it out."""

    method: str
    path: str
    params: dict[str, str]
    status: int
    body: Any
    used: bool = False


_current: contextvars.ContextVar[list[StoredExchange] | None] = contextvars.ContextVar(
    "songnodes_replay_stored", default=None
)
_TRANSIENT = frozenset({0, 408, 429, 500, 502, 503, 504})


_STORED_SQL = text(
    """
    WITH latest AS (
        SELECT DISTINCT ON (e.bronze_track_id) e.bronze_track_id, e.run_id
        FROM bronze_api_enrichments e
        WHERE e.bronze_track_id = ANY(CAST(:bronzes AS uuid[])) AND e.api_provider = :p
          AND e.run_id IS NOT NULL AND e.run_id <> ALL(CAST(:runs AS uuid[]))
        ORDER BY e.bronze_track_id, e.fetched_at DESC
    )
    SELECT e.bronze_track_id::text AS bronze, e.api_endpoint, e.request_params,
           e.raw_response, e.response_status
    FROM bronze_api_enrichments e
    JOIN latest l ON l.bronze_track_id = e.bronze_track_id AND l.run_id = e.run_id
    WHERE e.api_provider = :p
    ORDER BY e.bronze_track_id, e.fetched_at, e.created_at
    """
)


def load_stored_many(
    session: Session, provider: str, inputs: list[LookupInput]
) -> dict[str, list[StoredExchange]]:
    """Per bronze track: the newest stored exchange set of ``provider`` from an earlier run
    (never the replay run itself), for a whole batch in one query."""
    out: dict[str, list[StoredExchange]] = {}
    if not inputs:
        return out
    rows = session.execute(
        _STORED_SQL,
        {
            "bronzes": sorted({li.bronze_id for li in inputs}),
            "p": provider,
            "runs": sorted({li.run_id for li in inputs}),
        },
    )
    for r in rows:
        stored = stored_exchange(
            r.api_endpoint, r.request_params, r.response_status, r.raw_response
        )
        out.setdefault(r.bronze, []).append(stored)
    return out


def stored_exchange(
    endpoint: str, params: Any, status: int | None, body: Any
) -> StoredExchange:
    """One ``bronze_api_enrichments`` row (``"GET https://..."``, params, status, body) as an
    exchange the stored answerer can serve."""
    method, _, url = str(endpoint).partition(" ")
    asked = {str(k): str(v) for k, v in (params or {}).items()}
    return StoredExchange(method, urlsplit(url).path, asked, int(status or 0), body)


def params_match(stored: dict[str, str], asked: dict[str, str]) -> bool:
    """Whether a stored request's parameters are the asked ones (a redacted stored value
    matches whatever was asked)."""
    from providers._http import REDACTED

    keys = {k for k, v in stored.items() if v != REDACTED} | {k for k in asked if k not in stored}
    return all(stored.get(k) == asked.get(k) for k in keys)


def stored_answer(method: str, url: str, params: Mapping[str, Any] | None) -> CannedReply:
    """Answer one request of a stored lookup from its stored exchanges (no network, no httpx)."""
    stored = _current.get()
    if stored is None:
        raise NoStoredResponse("stored replay answerer used outside a stored lookup")
    parts = urlsplit(url)
    path = parts.path
    # httpx's own query encoding (True -> "true", None -> ""), as the live request was sent.
    asked = dict(httpx.QueryParams(parts.query).merge(params or {}).multi_items())
    same_path = [s for s in stored if s.method == method and s.path == path]
    candidates = [s for s in same_path if params_match(s.params, asked)] or [
        s for s in same_path if not s.used
    ]
    if not candidates and method == "POST" and "token" in path:
        # The original lookup reused a cached token: answer the token request ourselves.
        return CannedReply(200, {"access_token": "stored-replay", "expires_in": 3600})
    if not candidates:
        raise NoStoredResponse(f"no stored response for {method} {path}")
    # Prefer the answer the original lookup acted on (a retry's final reply, not its 503).
    candidates.sort(key=lambda s: (s.used, s.status in _TRANSIENT))
    hit = candidates[0]
    hit.used = True
    body = hit.body
    if isinstance(body, dict) and set(body) == {"_text"}:
        return CannedReply(hit.status or 200, body, is_json=False)
    if isinstance(body, dict) and "_error" in body and not hit.status:
        raise TransientError("timeout: the stored exchange timed out")
    return CannedReply(hit.status or 200, body)


_lock = threading.Lock()
_providers: dict[tuple[str, str], Provider] = {}


def offline_provider(name: str, answerer: Answerer, host: str, dummy: str) -> Provider:
    """One client of provider ``name`` per (process, ``host``) whose every request ``answerer``
    answers: given at construction its answerer (a ``CannedExchange``: no limiter, no HTTP
    stack), ``NoBreaker`` (stored answers say nothing about the provider's health) and one
    attempt (a stored reply does not change on retry). Missing credentials and URLs are filled
    with dummies (URLs under ``http://{host}/``, credentials ``dummy``): a stored lookup never
    reaches a real endpoint."""
    found = _providers.get((name, host))  # lock-free after the first build (read on every lookup)
    if found is not None:
        return found
    from pydantic import SecretStr

    from providers.base import RetryPolicy
    from providers.breaker import NoBreaker
    from providers.registry import get_provider
    from providers.settings import settings_for

    with _lock:
        if (name, host) in _providers:
            return _providers[(name, host)]
        s = settings_for(name)
        fill: dict[str, Any] = {}
        if not s.base_url:
            fill["base_url"] = f"http://{host}/{name}"
        for attr, value in (
            ("client_id", dummy),
            ("client_secret", SecretStr(dummy)),
            ("api_key", SecretStr(dummy)),
        ):
            if hasattr(s, attr) and getattr(s, attr) is None:
                fill[attr] = value
        if getattr(s, "token_url", None) is None:
            fill["token_url"] = f"http://{host}/{name}/token"
        # (A provider that is not HTTP-based takes only its settings: get_provider drops the
        # options, as before, when answers were patched onto HTTP clients only.)
        provider = get_provider(
            name, s.model_copy(update=fill), answerer=answerer, breaker=NoBreaker(),
            retry=RetryPolicy(attempts=1),
        )  # fmt: skip
        _providers[(name, host)] = provider
        return provider


def stored_provider(name: str) -> Provider:
    """The process's client of ``name`` answered from stored exchanges (:func:`stored_answer`)."""
    return offline_provider(name, stored_answer, "stored.replay", "stored-replay")


def parse_stored(
    session: Session, li: LookupInput, stored: list[StoredExchange] | None
) -> LookupResult:
    if li.provider in SCRAPER_PROVIDERS:
        from pipeline.scraper_providers import ScraperProvider

        result = ScraperProvider(li.provider).lookup(session, li.query, li.fields)
    else:
        if not stored:
            raise NoStoredResponse(f"no stored response for {li.provider}", provider=li.provider)
        token = _current.set(stored)
        try:
            result = stored_provider(li.provider).lookup(li.query, li.fields)
        except ProviderError as exc:
            # Nothing was fetched: a failed stored lookup stores nothing and costs nothing.
            exc.responses = []
            raise
        finally:
            _current.reset(token)
    result.responses = []
    return result


def stored_lookup(session: Session, li: LookupInput) -> LookupResult:
    """Answer a lookup from stored raw responses with the provider's own parsing: zero HTTP.

    The result carries no responses, so nothing new is appended to bronze and the lookup
    counts zero API calls and zero cost.
    """
    stored = (
        None
        if li.provider in SCRAPER_PROVIDERS
        else load_stored_many(session, li.provider, [li]).get(li.bronze_id, [])
    )
    return parse_stored(session, li, stored)


def stored_outcomes(
    session: Session, provider: str, inputs: list[LookupInput]
) -> list[LookupOutcome]:
    """:func:`stored_lookup` for a batch of one provider's lookups (stored responses read in
    one query); each failure (nothing stored, a parse error) is that lookup's outcome."""
    stored = {} if provider in SCRAPER_PROVIDERS else load_stored_many(session, provider, inputs)
    from pipeline.lookups.engine import outcome_of

    return [
        outcome_of(partial(parse_stored, session, li, stored.get(li.bronze_id)), li)
        for li in inputs
    ]


