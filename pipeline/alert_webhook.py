"""Post alert changes to a webhook: Alertmanager's API or a Slack incoming webhook.

``SONGNODES_ALERT_WEBHOOK_URL`` turns it on. The payload follows the receiver:

* ``alertmanager`` (default when the URL ends in ``/api/v2/alerts``): the JSON array that
  Alertmanager's ``POST /api/v2/alerts`` takes (``labels``, ``annotations``, ``startsAt``,
  ``endsAt``). Every evaluation sends everything that fires (Alertmanager expects clients to
  re-send firing alerts, and resolves one after ``resolve_timeout`` otherwise) plus the
  resolutions of this evaluation with ``endsAt`` set.
* ``slack``: ``{"text": ...}``, one line per change, sent only when something changed.

The URL of a Slack webhook is itself a secret, so it is never logged (only its host is).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from pipeline.alerts import Alert, Change, describe

__all__ = ["alertmanager_payload", "notify", "slack_payload", "webhook_format"]

log = logging.getLogger("songnodes.alerts")


def webhook_format(url: str, configured: str | None = None) -> str:
    fmt = (configured or os.environ.get("SONGNODES_ALERT_WEBHOOK_FORMAT") or "").lower()
    if fmt:
        if fmt not in ("alertmanager", "slack"):
            raise ValueError(f"SONGNODES_ALERT_WEBHOOK_FORMAT must be alertmanager or slack: {fmt}")
        return fmt
    return "alertmanager" if urlsplit(url).path.rstrip("/").endswith("/api/v2/alerts") else "slack"


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _am_alert(
    condition: str, subject: str, value: float | None, threshold: float, starts: dt.datetime,
    ends: dt.datetime | None,
) -> dict[str, Any]:  # fmt: skip
    alert: dict[str, Any] = {
        "labels": {
            "alertname": "SongNodes_" + condition,
            "condition": condition,
            "subject": subject,
            "service": "songnodes",
        },
        "annotations": {
            "summary": f"{condition} [{subject}]",
            "value": "n/a" if value is None else f"{value:g}",
            "threshold": f"{threshold:g}",
        },
        "startsAt": _iso(starts),
    }
    if ends is not None:
        alert["endsAt"] = _iso(ends)
    return alert


def alertmanager_payload(
    firing: Sequence[Alert], changes: Sequence[Change]
) -> list[dict[str, Any]]:
    out = [_am_alert(a.condition, a.subject, a.value, a.threshold, a.since, None) for a in firing]
    out += [
        _am_alert(c.condition, c.subject, c.value, c.threshold, c.at, c.at)
        for c in changes
        if c.event == "resolved"
    ]
    return out


def slack_payload(changes: Sequence[Change]) -> dict[str, Any]:
    return {"text": "SongNodes alerts:\n" + "\n".join(describe(changes))}


def notify(
    firing: Sequence[Alert],
    changes: Sequence[Change],
    url: str | None = None,
    fmt: str | None = None,
    timeout_s: float = 5.0,
) -> bool:
    """Post to the webhook if one is configured; True when something was sent and accepted.
    A failing receiver is logged, never raised: the events are already in alert_events."""
    url = url or os.environ.get("SONGNODES_ALERT_WEBHOOK_URL")
    if not url:
        return False
    kind = webhook_format(url, fmt)
    if kind == "slack" and not changes:
        return False
    payload: Any = (
        alertmanager_payload(firing, changes) if kind == "alertmanager" else slack_payload(changes)
    )
    if kind == "alertmanager" and not payload:
        return False
    host = urlsplit(url).hostname
    # urllib, not httpx: httpx logs every request's full URL at INFO, and a Slack webhook's
    # URL is its credential.
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        log.warning("alert webhook unreachable", extra={"host": host, "error": type(exc).__name__})
        return False
    if status >= 300:
        log.warning("alert webhook refused", extra={"host": host, "status": status})
        return False
    return True
