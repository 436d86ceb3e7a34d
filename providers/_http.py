"""HTTP helpers shared by the providers: bounded body reads, redaction, Retry-After parsing.

Redaction is one policy at the HTTP edge, applied everywhere a credential could surface:

* :func:`redact`: decoded bodies and request params (stored responses): credential-named keys.
* :func:`redact_text`: any text (a log line, an exception message, a task argument's repr):
  every credential value the process knows (:func:`register_secret`: the provider settings and
  each OAuth token as it is fetched) and credential-looking ``name=value`` query/form pairs,
  ``"name": "value"`` JSON members and ``Authorization`` schemes (Bearer, Basic, Discogs token).
* :func:`install_log_redaction`: every log record of the process (httpx's request lines, ours,
  Celery's), message and traceback, passes through :func:`redact_text` when it is created.
"""

from __future__ import annotations

import email.utils
import functools
import json
import logging
import re
import threading
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
    "install_log_redaction",
    "parse_retry_after",
    "read_bounded",
    "redact",
    "redact_text",
    "register_secret",
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


_SECRETS: set[str] = set()
_SECRETS_LOCK = threading.Lock()
_SECRET_VALUES_RE: re.Pattern[str] | None = None
# Shorter values are not worth a literal search: they would redact ordinary words.
_MIN_SECRET_LENGTH = 6
_NAMES = "|".join(sorted((re.escape(n) for n in SECRET_NAMES), key=len, reverse=True))
# name=value in a query string or form body (also URL-encoded inside another value: %3D / %26).
_PAIR_RE = re.compile(rf"(?i)(?<![\w-])({_NAMES})(=|%3D)([^&\s\"'<>,;)\]}}]+)")
# "name": "value" (JSON) and 'name': 'value' (a Python repr).
_MEMBER_RE = re.compile(rf"""(?i)(["']({_NAMES})["']\s*:\s*)(["'])(.*?)(?<!\\)\3""")
# Authorization header values, wherever they are printed.
_SCHEME_RE = re.compile(
    r"(?i)\b(Bearer|Basic|Discogs\s+token=|token=)(\s*)([A-Za-z0-9._~+/=-]{6,})"
)


def register_secret(value: str | None) -> None:
    """Make ``value`` (an API key, client secret, fetched token) redacted wherever it appears."""
    global _SECRET_VALUES_RE
    if not value or len(value) < _MIN_SECRET_LENGTH or value in _SECRETS:
        return
    with _SECRETS_LOCK:
        _SECRETS.add(value)
        # Longest first, so a secret containing another is replaced whole.
        ordered = sorted(_SECRETS, key=len, reverse=True)
        _SECRET_VALUES_RE = re.compile("|".join(re.escape(v) for v in ordered))


def redact_text(text: str) -> str:
    """``text`` with every known credential and every credential-looking pair replaced by ***."""
    if not text:
        return text
    known = _SECRET_VALUES_RE
    if known is not None:
        text = known.sub(REDACTED, text)
    text = _PAIR_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    text = _MEMBER_RE.sub(lambda m: f"{m.group(1)}{m.group(3)}{REDACTED}{m.group(3)}", text)
    return _SCHEME_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)


_FORMATTER = logging.Formatter()
_INSTALLED: list[bool] = []


def install_log_redaction() -> None:
    """Redact every log record of this process when it is created (idempotent).

    A record factory rather than a handler filter: it covers every logger and handler, including
    ones configured later (Celery replaces the handlers at worker start) and httpx's own."""
    if _INSTALLED:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: logging reports it; redact what we can
            message = str(record.msg)
        record.msg, record.args = redact_text(message), ()
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = redact_text(_FORMATTER.formatException(record.exc_info))
        return record

    logging.setLogRecordFactory(factory)
    _INSTALLED.append(True)


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
