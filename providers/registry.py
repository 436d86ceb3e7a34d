"""Find providers through the ``songnodes.providers`` entry-point group and build them."""

from __future__ import annotations

import importlib.metadata
from typing import Any, cast

import httpx

from providers.base import HttpProvider
from providers.breaker import TransitionCallback
from providers.contract import Provider
from providers.ratelimit import RateLimitConfig
from providers.settings import SETTINGS_CLASSES, ProviderSettings

__all__ = [
    "ENTRY_POINT_GROUP",
    "available_providers",
    "configure_for_sandbox",
    "get_provider",
    "load_provider_classes",
]

ENTRY_POINT_GROUP = "songnodes.providers"

# Where each provider's token endpoint lives inside the sandbox (same path as the real service).
_SANDBOX_TOKEN_PATHS = {
    "spotify": "/spotify/api/token",
    "beatport": "/beatport/v4/auth/o/token/",
    "tidal": "/tidal/v1/oauth2/token",
}
# Path under the sandbox prefix that plays the role of each real base URL.
_SANDBOX_BASE_PATHS = {
    "beatport": "/beatport/v4",
    "spotify": "/spotify/v1",
    "musicbrainz": "/musicbrainz/ws/2",
    "discogs": "/discogs",
    "lastfm": "/lastfm/2.0/",
    "acousticbrainz": "/acousticbrainz/api/v1",
    "deezer": "/deezer",
    "getsongbpm": "/getsongbpm",
    "tidal": "/tidal/v2",
}


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def available_providers() -> list[str]:
    """Names of every installed provider, sorted."""
    return sorted(_entry_points())


def load_provider_classes() -> list[type]:
    """Import every installed provider's class (a worker does it once before forking)."""
    return [ep.load() for ep in _entry_points().values()]


def get_provider(
    name: str,
    settings: ProviderSettings | None = None,
    *,
    rate_limit: RateLimitConfig | None = None,
    on_transition: TransitionCallback | None = None,
    http_client: httpx.Client | None = None,
    **options: Any,
) -> Provider:
    """Build provider ``name`` (settings from the environment unless given). ``options`` go to
    an HTTP provider's constructor as they are (``answerer``, ``exchange``, ``breaker``,
    ``retry``, ...: see ``HttpProvider.__init__``)."""
    eps = _entry_points()
    if name not in eps:
        raise KeyError(f"unknown provider {name!r}; installed: {', '.join(sorted(eps))}")
    cls = eps[name].load()
    if isinstance(cls, type) and issubclass(cls, HttpProvider):
        return cls(
            settings,
            rate_limit=rate_limit,
            on_transition=on_transition,
            http_client=http_client,
            **options,
        )
    # A third-party provider that is not HTTP-based takes only its settings.
    return cast(Provider, cls(settings) if settings is not None else cls())


def configure_for_sandbox(base_url: str) -> dict[str, str]:
    """Environment mapping that points every provider (and its token URL) at a sandbox."""
    root = base_url.rstrip("/")
    env: dict[str, str] = {}
    for name in SETTINGS_CLASSES:
        prefix = f"SONGNODES_{name.upper()}_"
        env[prefix + "BASE_URL"] = root + _SANDBOX_BASE_PATHS[name]
        if name in _SANDBOX_TOKEN_PATHS:
            env[prefix + "TOKEN_URL"] = root + _SANDBOX_TOKEN_PATHS[name]
            env[prefix + "CLIENT_ID"] = "sandbox-client"
            env[prefix + "CLIENT_SECRET"] = "sandbox-secret"
        if name in ("discogs", "lastfm", "getsongbpm"):
            env[prefix + "API_KEY"] = "sandbox-key"
    return env
