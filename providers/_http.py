"""HTTP helpers shared by the providers: bounded body reads, redaction, Retry-After parsing."""

from __future__ import annotations

import email.utils
import functools
import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from providers.errors import MalformedResponse

__all__ = [
    "MAX_BODY_BYTES",
    "REDACTED",
    "SECRET_NAMES",
    "decode_body",
    "parse_retry_after",
    "read_bounded",
    "redact",
]

MAX_BODY_BYTES = 5 * 1024 * 1024
REDACTED = "***"
# Exact names (lower-cased) of params, headers and body keys that carry credentials. Not "key":
# that is a musical key in half the payloads we store.
SECRET_NAMES = frozenset(
    {
        "access_token",
        "refresh_token",
        "id_token",
        "client_secret",
        "client_id",
        "api_key",
        "apikey",
        "token",
        "password",
        "secret",
        "authorization",
        "x-api-key",
    }
)
_TEXT_KEEP = 2000


# Leaves of a decoded JSON body: redact returns them as they are.
_SCALARS = frozenset({str, int, float, bool, type(None)})


@functools.lru_cache(maxsize=1024, typed=True)  # a handful of distinct keys per API, seen often
def _is_secret(key: Any) -> bool:
    return str(key).lower() in SECRET_NAMES


def redact(value: Any) -> Any:
    """A copy of ``value`` with every credential-named key replaced by ``***``."""
    # Runs over every stored body: exact-type checks first and scalar leaves inline, which
    # halves its cost on a search reply (ABC isinstance checks and a call per leaf before).
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is dict or isinstance(value, Mapping):
        return {
            k: REDACTED if _is_secret(k) else v if type(v) in _SCALARS else redact(v)
            for k, v in value.items()
        }
    if kind is list or isinstance(value, list | tuple):
        return [v if type(v) in _SCALARS else redact(v) for v in value]
    return value


def read_bounded(response: httpx.Response, limit: int = MAX_BODY_BYTES) -> bytes:
    """Read a streamed body, refusing more than ``limit`` bytes without buffering them all."""
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise MalformedResponse(f"body of {declared} bytes exceeds the {limit}-byte cap")
    buf = bytearray()
    for chunk in response.iter_bytes():
        buf += chunk
        if len(buf) > limit:
            raise MalformedResponse(f"body exceeds the {limit}-byte cap")
    return bytes(buf)


def decode_body(content: bytes) -> tuple[Any, bool]:
    """(parsed JSON, True) or ({"_text": first 2000 chars}, False) for anything else."""
    if not content:
        return {"_text": ""}, False
    try:
        return json.loads(content), True
    except (ValueError, RecursionError):
        text = content[:_TEXT_KEEP].decode("utf-8", errors="replace")
        return {"_text": text}, False


def parse_retry_after(value: str | None, default: float) -> float:
    """Retry-After as seconds: delta-seconds or an HTTP date; ``default`` if absent or garbage."""
    if not value:
        return default
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - time.time())


def utc_now() -> datetime:
    return datetime.now(UTC)
