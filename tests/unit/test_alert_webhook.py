"""The alert webhook posts JSON that Alertmanager's API and a Slack incoming webhook accept,
to a real HTTP receiver on localhost.

Shapes: Alertmanager ``POST /api/v2/alerts`` takes an array of ``{labels, annotations,
startsAt, endsAt, generatorURL}`` (Alertmanager's OpenAPI spec, ``postableAlerts``); a Slack
incoming webhook takes ``{"text": ...}`` (api.slack.com/messaging/webhooks)."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from pipeline.alert_webhook import notify, webhook_format
from pipeline.alerts import Alert, Change
from tests._receiver import receiver

T0 = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(minutes=5)
FIRING = [Alert("provider_success_rate", "deezer", 0.25, 0.7, T0)]
CHANGES = [
    Change("firing", "provider_success_rate", "deezer", 0.25, 0.7, T0),
    Change("resolved", "queue_lag", "tidal", 12.0, 600.0, T1),
]


def test_alertmanager_gets_every_firing_alert_and_the_resolutions() -> None:
    with receiver() as rec:
        assert notify(FIRING, CHANGES, url=rec.url + "/api/v2/alerts")
    [(path, body)] = rec.posts
    assert path == "/api/v2/alerts"
    assert isinstance(body, list) and len(body) == 2
    firing, resolved = body
    assert firing["labels"] == {
        "alertname": "SongNodes_provider_success_rate",
        "condition": "provider_success_rate",
        "subject": "deezer",
        "service": "songnodes",
    }
    assert firing["annotations"]["value"] == "0.25"
    assert firing["annotations"]["threshold"] == "0.7"
    assert firing["startsAt"] == "2026-12-04T12:00:00Z" and "endsAt" not in firing
    assert resolved["labels"]["condition"] == "queue_lag"
    assert resolved["endsAt"] == "2026-12-04T12:05:00Z"  # endsAt in the past = resolved


def test_slack_gets_one_line_per_change_and_nothing_when_nothing_changed() -> None:
    with receiver() as rec:
        assert notify(FIRING, CHANGES, url=rec.url + "/services/T000/B000/XXXX")
        assert not notify(FIRING, [], url=rec.url + "/services/T000/B000/XXXX")
    [(_, body)] = rec.posts
    assert set(body) == {"text"}
    lines = body["text"].splitlines()
    assert lines[1:] == [
        "FIRING provider_success_rate [deezer] value 0.25 threshold 0.7",
        "RESOLVED queue_lag [tidal] value 12 threshold 600",
    ]


def test_a_refusing_receiver_is_logged_without_the_secret_url(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A Slack webhook URL is a credential: the warning names the host only."""
    with receiver(status=500) as rec, caplog.at_level(logging.DEBUG):
        secret = rec.url + "/services/T000/B000/s3cr3t-token"
        assert not notify(FIRING, CHANGES, url=secret)
    assert len(rec.posts) == 1
    with caplog.at_level(logging.DEBUG):  # an unreachable one too
        assert not notify(FIRING, CHANGES, url="http://127.0.0.1:9/services/s3cr3t-token")
    assert any("refused" in r.getMessage() for r in caplog.records)
    assert all("s3cr3t" not in r.getMessage() and "s3cr3t" not in str(r.__dict__)
               for r in caplog.records)  # fmt: skip


def test_format_is_inferred_or_configured() -> None:
    assert webhook_format("http://am:9093/api/v2/alerts") == "alertmanager"
    assert webhook_format("https://hooks.slack.com/services/x") == "slack"
    assert webhook_format("http://x/hook", "alertmanager") == "alertmanager"
    with pytest.raises(ValueError, match="alertmanager or slack"):
        webhook_format("http://x/hook", "teams")


def test_unset_url_sends_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SONGNODES_ALERT_WEBHOOK_URL", raising=False)
    assert notify(FIRING, CHANGES) is False
