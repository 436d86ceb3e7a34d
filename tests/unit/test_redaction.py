"""Issue 15: one redaction at the HTTP edge, applied to log records, messages and task args.

The URL and header shapes are the real APIs' (docs/providers.md): Last.fm and GetSongBPM take
``api_key`` in the query string, Discogs ``Authorization: Discogs token=...``, Spotify/Beatport/
Tidal OAuth client credentials (Basic auth to the token URL, then ``Bearer``).
"""

from __future__ import annotations

import logging
import uuid

import httpx
import pytest

from providers._http import install_log_redaction, redact_text, register_secret
from providers.errors import TransientError


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        (
            'HTTP Request: GET https://ws.audioscrobbler.com/2.0/?method=track.getInfo'
            '&artist=Bicep&api_key=0123456789abcdef&format=json "HTTP/1.1 200 OK"',
            "0123456789abcdef",
        ),
        ("GET /search/?api_key=k3yk3yk3y&type=song", "k3yk3yk3y"),
        ("Authorization: Discogs token=AbCdEfGh123", "AbCdEfGh123"),
        ("headers={'Authorization': 'Bearer eyJhbGciOi.J9.abc'}", "eyJhbGciOi.J9.abc"),
        ("Basic c2FuZGJveC1jbGllbnQ6c2VjcmV0", "c2FuZGJveC1jbGllbnQ6c2VjcmV0"),
        ('{"access_token": "tok-123456", "token_type": "Bearer"}', "tok-123456"),
        ("grant_type=client_credentials&client_secret=s3cr3t-value", "s3cr3t-value"),
        ("{'refresh_token': 'rfrsh-abcdef'}", "rfrsh-abcdef"),
    ],
)
def test_credential_shapes_are_redacted(line: str, secret: str) -> None:
    out = redact_text(line)
    assert secret not in out
    assert "***" in out


def test_musical_key_and_ordinary_text_survive() -> None:
    """Not "key": half the payloads we store have a musical key."""
    text = "key=Am bpm=128 title=Energy (tokenless)"
    assert redact_text(text) == text


def test_registered_values_are_redacted_anywhere() -> None:
    """A credential the process loaded is redacted even where no pattern would see it (a path,
    a repr, an upstream error message); settings register theirs when they load."""
    from providers.settings import LastfmSettings

    value = f"lfm{uuid.uuid4().hex}"
    LastfmSettings(api_key=value)
    assert value not in redact_text(f"GET /users/{value}/x failed: {value!r}")


def test_every_log_record_is_redacted_including_httpx_and_tracebacks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The record factory covers any logger (httpx's own INFO request line here), arguments and
    the formatted traceback of an exception logged with it."""
    install_log_redaction()
    secret = f"k{uuid.uuid4().hex}"
    caplog.set_level(logging.INFO)
    logging.getLogger("httpx").info(
        'HTTP Request: %s %s "%s"', "GET", f"https://x.test/?api_key={secret}", "HTTP/1.1 200 OK"
    )
    try:
        raise RuntimeError(f"upstream said api_key={secret}")
    except RuntimeError:
        logging.getLogger("songnodes.test").exception("lookup crashed")
    text = caplog.text + "".join(r.exc_text or "" for r in caplog.records)
    assert secret not in text
    assert "api_key=***" in caplog.records[0].getMessage()
    assert "api_key=***" in (caplog.records[1].exc_text or "")


def test_provider_error_messages_are_redacted() -> None:
    """Exception messages (stored on failed lookups, shown in Flower) carry no credential."""
    url = "https://ws.audioscrobbler.com/2.0/?api_key=abcdef123456&method=x"
    err = httpx.ConnectError(f"failed for {url}")
    exc = TransientError(f"{type(err).__name__}: {err}", provider="lastfm")
    assert "abcdef123456" not in str(exc) and "api_key=***" in str(exc)


def test_oauth_tokens_are_registered_when_fetched() -> None:
    token = f"tok{uuid.uuid4().hex}"
    register_secret(token)
    assert redact_text(f"using {token}") == "using ***"


def test_task_argument_reprs_are_redacted_before_publish() -> None:
    """Flower shows argsrepr/kwargsrepr: the publish hook redacts them."""
    from tasks.app import _redact_task_arguments

    headers = {"argsrepr": "('https://x/?api_key=zzzzzzzz',)", "kwargsrepr": "{'token': 'tttttt'}"}
    _redact_task_arguments(headers=headers)
    assert headers == {"argsrepr": "('https://x/?api_key=***',)", "kwargsrepr": "{'token': '***'}"}
