"""Typed errors raised by the provider layer.

Exception tree (every error carries ``.provider`` and ``.responses``: the raw responses collected
before the failure, credentials redacted, so the caller can store them in bronze even on failure)::

    ProviderError                  base class; also used for unexpected 4xx (a bug on our side)
    ├── RateLimited(retry_after)   RETRYABLE. The provider (429/503/body code) or our global limit
    │                              says wait ``retry_after`` seconds. Celery retries with countdown.
    ├── TransientError             RETRYABLE. 5xx, timeouts, connection errors, "try later" codes.
    ├── CircuitOpen(retry_after)   RETRYABLE. Our breaker is open; no request was sent.
    ├── NotFound                   not retryable, NOT a provider failure: track unknown there.
    ├── RequestRejected            not retryable: another 4xx (Spotify's 400 "invalid id").
    ├── CapabilityUnavailable      not retryable, NOT a provider failure: the endpoint is closed to
    │                              this app (Spotify audio-features 403/404) or the provider is not
    │                              configured (AcousticBrainz without a base URL).
    ├── AuthError                  not retryable: credentials missing, invalid or suspended.
    └── MalformedResponse          not retryable: the body is not what the API documents (HTML page,
                                   truncated JSON, wrong types, body over the size cap).

The circuit breaker counts TransientError, RateLimited (once the in-call retry budget is spent) and
MalformedResponse as failures; NotFound and CapabilityUnavailable count as successes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from providers.contract import RawResponse

__all__ = [
    "RETRYABLE_ERRORS",
    "AuthError",
    "CapabilityUnavailable",
    "CircuitOpen",
    "MalformedResponse",
    "NotAnswered",
    "NotFound",
    "ProviderError",
    "RateLimited",
    "RequestRejected",
    "TransientError",
]


class ProviderError(Exception):
    """Base class of every error the provider layer raises."""

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        responses: Sequence[RawResponse] = (),
    ) -> None:
        # Messages often quote a URL or an upstream error: never a credential in them.
        from providers._http import redact_text

        message = redact_text(message)
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.responses: list[RawResponse] = list(responses)

    def __str__(self) -> str:
        prefix = f"[{self.provider}] " if self.provider else ""
        return f"{prefix}{self.message}"


class RateLimited(ProviderError):
    """The provider, or our shared limit, asks us to wait ``retry_after`` seconds.

    ``local`` is True when our own global limiter refused (no request was sent): that is back
    pressure, not a provider failure, so the breaker ignores it.
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after: float,
        provider: str = "",
        responses: Sequence[RawResponse] = (),
        local: bool = False,
    ) -> None:
        super().__init__(message, provider=provider, responses=responses)
        self.retry_after = max(0.0, float(retry_after))
        self.local = local


class TransientError(ProviderError):
    """A failure that may go away by itself: 5xx, timeout, connection error."""


class CircuitOpen(ProviderError):
    """The breaker for this provider is open; retry after ``retry_after`` seconds."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float,
        provider: str = "",
        responses: Sequence[RawResponse] = (),
    ) -> None:
        super().__init__(message, provider=provider, responses=responses)
        self.retry_after = max(0.0, float(retry_after))


class NotFound(ProviderError):
    """The provider answered correctly but does not know the track."""


class RequestRejected(ProviderError):
    """A 4xx other than 401/403/404/429: the API refused this request as malformed (Spotify
    answers 400 "invalid id" for an id that is not one of its ids)."""


class CapabilityUnavailable(ProviderError):
    """The provider cannot serve this capability for us (closed endpoint, not configured)."""


class NotAnswered(ProviderError):
    """An answered provider (stored replay) holds no answer for this request: the original lookup
    never made it. Never a reason to go to the network."""


class AuthError(ProviderError):
    """Credentials are missing, invalid or suspended."""


class MalformedResponse(ProviderError):
    """The response is not the documented shape (or is too large to read)."""


RETRYABLE_ERRORS: tuple[type[ProviderError], ...] = (RateLimited, TransientError, CircuitOpen)
