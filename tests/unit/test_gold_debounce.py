"""The gold debounces stretch with the work they schedule (tasks/gold.py).

A view refresh recomputes whole views (1 s each at 20k bench rows) and a payment of owed
artists reads every appearance of a popular artist: scheduled every 5 s / 0.5 s whatever their
cost, they took a growing share of PostgreSQL as the data grew. The wait is the configured
debounce or the load factor times the last run's duration, whichever is longer. Without
``REDIS_URL`` the durations stay in the process (the demo); with it they are shared (fakeredis
here: Redis-only logic).
"""

from __future__ import annotations

import time

import fakeredis
import pytest

import tasks.gold as gold


def test_debounce_is_the_setting_until_the_last_run_was_long(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setattr(gold, "_local_durations", {})
    assert gold.debounce_s("refresh") == gold.REFRESH_DEBOUNCE_S
    assert gold.debounce_s("artists") == gold.ARTISTS_DEBOUNCE_S
    gold._local_durations.update(refresh=0.01, artists=0.01)  # quick runs: the settings hold
    assert gold.debounce_s("refresh") == gold.REFRESH_DEBOUNCE_S
    assert gold.debounce_s("artists") == gold.ARTISTS_DEBOUNCE_S
    gold._local_durations.update(refresh=1.0, artists=0.4)
    assert gold.debounce_s("refresh") == pytest.approx(gold.REFRESH_LOAD_FACTOR * 1.0)
    assert gold.debounce_s("artists") == pytest.approx(gold.ARTISTS_LOAD_FACTOR * 0.4)


def test_durations_are_shared_through_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    server = fakeredis.FakeServer()
    client = fakeredis.FakeRedis(server=server)
    monkeypatch.setenv("REDIS_URL", "redis://fake")
    monkeypatch.setattr(gold, "_redis", lambda: client)
    # a 2 s refresh, seen by another process
    gold._DEBOUNCES["refresh"].took(time.monotonic() - 2.0)
    other = fakeredis.FakeRedis(server=server)
    assert float(other.get("songnodes:gold:refresh-seconds") or 0) == pytest.approx(2.0, abs=0.1)
    assert gold.debounce_s("refresh") == pytest.approx(gold.REFRESH_LOAD_FACTOR * 2.0, abs=2)
