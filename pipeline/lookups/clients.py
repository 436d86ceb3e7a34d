"""Provider clients of this process and the answerer choice behind :func:`ask`.

One client per provider per process (:func:`provider_client`), built once with what the
database configures: its global rate limit, and a breaker whose transitions are written to
``enrichment_providers.health_status`` (:func:`record_health`). An HTTP client gets its
exchange, breaker and retry policy at construction (``providers.registry.get_provider``);
nothing is switched or patched on it afterwards.

:func:`ask` is the one place that decides how a lookup is answered:

* stored replay (``replay_mode = 'stored'``): the provider's own parsing over the stored
  responses (``pipeline.stored_answers.stored_lookup``), zero HTTP;
* a scraper provider (``pipeline.scraper_providers``): a read of our own bronze rows, in the
  caller's session or a short one of its own;
* any other provider: its live client.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from db.engine import session_scope
from pipeline.lookups.outcome import LookupInput
from pipeline.scraper_providers import SCRAPER_PROVIDERS, ScraperProvider
from providers.contract import LookupResult, Provider
from providers.errors import TransientError

__all__ = [
    "HEALTH_BY_STATE",
    "Client",
    "ask",
    "cached_clients",
    "provider_client",
    "record_health",
    "reset_clients",
]

log = logging.getLogger(__name__)

HEALTH_BY_STATE = {"closed": "healthy", "half_open": "degraded", "open": "down"}

#: What :func:`provider_client` hands out: an HTTP (or third-party) provider, or a scraper one.
Client = Provider | ScraperProvider

_lock = threading.Lock()
_clients: dict[str, Client] = {}


def record_health(provider: str, old: Any, new: Any) -> None:
    """Breaker transition -> ``enrichment_providers.health_status`` and ``last_health_check``."""
    state = str(getattr(new, "value", new))
    with session_scope() as session:
        session.execute(
            text(
                "UPDATE enrichment_providers SET health_status = :h, last_health_check = now() "
                "WHERE provider_name = :p"
            ),
            {"h": HEALTH_BY_STATE.get(state, "degraded"), "p": provider},
        )
    log.warning("provider %s circuit %s -> %s", provider, getattr(old, "value", old), state)


def provider_client(name: str) -> Client:
    """One client per provider per process, with the limits configured in the database."""
    from providers.ratelimit import RateLimitConfig
    from providers.registry import get_provider

    with _lock:
        if name in _clients:
            return _clients[name]
        client: Client
        if name in SCRAPER_PROVIDERS:
            client = ScraperProvider(name)
        else:
            with session_scope() as session:
                row = session.execute(
                    text(
                        "SELECT rate_limit_per_second, rate_limit_per_day "
                        "FROM enrichment_providers WHERE provider_name = :p"
                    ),
                    {"p": name},
                ).first()
            limit = RateLimitConfig(
                per_second=float(row[0]) if row and row[0] is not None else None,
                per_day=int(row[1]) if row and row[1] is not None else None,
            )
            client = get_provider(name, rate_limit=limit, on_transition=record_health)
        _clients[name] = client
        return client


def cached_clients() -> list[Client]:
    """The clients built so far in this process (to close their connections)."""
    with _lock:
        return list(_clients.values())


def reset_clients() -> None:
    """Forget cached clients (tests and the demo change provider settings between runs)."""
    with _lock:
        _clients.clear()


def ask(li: LookupInput, session: Session | None = None) -> LookupResult:
    """Answer one lookup (see the module docstring). ``session``: the caller's, for the
    database reads of stored and scraper answers (``None``: a short one of their own).

    A database connection error of those reads is a ``TransientError`` to retry, not an
    answer to record as failed (PostgreSQL restarting).
    """
    try:
        if li.replay_mode == "stored":
            from pipeline.stored_answers import stored_lookup

            return _with_session(session, lambda s: stored_lookup(s, li))
        client = provider_client(li.provider)
        if isinstance(client, ScraperProvider):
            return _with_session(session, lambda s: client.lookup(s, li.query, li.fields))
        return client.lookup(li.query, li.fields)
    except (OperationalError, InterfaceError) as exc:
        raise TransientError(
            f"database unavailable: {type(exc).__name__}", provider=li.provider
        ) from exc


def _with_session(session: Session | None, read: Callable[[Session], LookupResult]) -> LookupResult:
    if session is not None:
        return read(session)
    with session_scope() as own:
        return read(own)
