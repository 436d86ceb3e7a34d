"""The gold debounces stretch with the work they schedule (tasks/gold.py).

A view refresh recomputes whole views (1 s each at 20k bench rows) and a payment of owed
artists reads every appearance of a popular artist: scheduled every 5 s / 0.5 s whatever their
cost, they took a growing share of PostgreSQL as the data grew. The wait is the configured
debounce or the load factor times the last run's duration, whichever is longer, counted from
the end of that run (the idle gap between two runs is what bounds their share). Without
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
    monkeypatch.setattr(gold, "_local_ended", {})  # ends unknown: count as just ended
    assert gold.debounce_s("refresh") == gold.REFRESH_DEBOUNCE_S
    assert gold.debounce_s("artists") == gold.ARTISTS_DEBOUNCE_S
    gold._local_durations.update(refresh=0.01, artists=0.01)  # quick runs: the settings hold
    assert gold.debounce_s("refresh") == gold.REFRESH_DEBOUNCE_S
    assert gold.debounce_s("artists") == gold.ARTISTS_DEBOUNCE_S
    gold._local_durations.update(refresh=1.0, artists=0.4)
    assert gold.debounce_s("refresh") == pytest.approx(gold.REFRESH_LOAD_FACTOR * 1.0)
    assert gold.debounce_s("artists") == pytest.approx(gold.ARTISTS_LOAD_FACTOR * 0.4)


@pytest.fixture
def other_process(monkeypatch: pytest.MonkeyPatch) -> fakeredis.FakeRedis:
    """This process's gold debounces on a fake Redis; returns another process's client."""
    server = fakeredis.FakeServer()
    client = fakeredis.FakeRedis(server=server)
    monkeypatch.setenv("REDIS_URL", "redis://fake")
    monkeypatch.setattr(gold, "_redis", lambda: client)
    return fakeredis.FakeRedis(server=server)


def test_durations_are_shared_through_redis(other_process: fakeredis.FakeRedis) -> None:
    other = other_process
    # a 2 s refresh, seen by another process
    gold._DEBOUNCES["refresh"].took(time.monotonic() - 2.0)
    assert float(other.get("songnodes:gold:refresh-seconds") or 0) == pytest.approx(2.0, abs=0.1)
    assert gold.debounce_s("refresh") == pytest.approx(gold.REFRESH_LOAD_FACTOR * 2.0, abs=2)


def test_the_spacing_counts_from_the_end_of_the_last_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 2 s refresh that just ended: the next waits 20 x 2 s. The same refresh ended 30 s
    ago: only the 10 s left of that spacing. Ended 100 s ago: the setting (5 s). So the next
    run never starts sooner than load factor x duration after the last one ended (the share of
    the database holds), and a change long after the last run is not held the whole spacing
    again (the 20k-row bench's last artist payment waited ~13 s that way)."""
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setattr(gold, "_local_durations", {})
    monkeypatch.setattr(gold, "_local_ended", {})
    gold._DEBOUNCES["refresh"].took(time.monotonic() - 2.0)
    assert gold.debounce_s("refresh") == pytest.approx(gold.REFRESH_LOAD_FACTOR * 2.0, abs=0.5)
    gold._local_ended["refresh"] = time.time() - 30
    assert gold.debounce_s("refresh") == pytest.approx(gold.REFRESH_LOAD_FACTOR * 2.0 - 30, abs=0.5)
    gold._local_ended["refresh"] = time.time() - 100
    assert gold.debounce_s("refresh") == gold.REFRESH_DEBOUNCE_S


def test_the_end_of_a_run_is_shared_through_redis(other_process: fakeredis.FakeRedis) -> None:
    """Another process sees when the last payment ended: a 3 s artist payment that ended 10 s
    ago leaves 5 x 3 - 10 = 5 s of spacing wherever the next one is scheduled."""
    other = other_process
    gold._DEBOUNCES["artists"].took(time.monotonic() - 3.0)
    ended = float(other.get("songnodes:gold:artists-ended") or 0)
    assert ended == pytest.approx(time.time(), abs=1)
    assert 0 < other.ttl("songnodes:gold:artists-ended") <= 3600
    other.set("songnodes:gold:artists-ended", f"{time.time() - 10:.3f}")
    expected = max(gold.ARTISTS_LOAD_FACTOR * 3.0 - 10, gold.ARTISTS_DEBOUNCE_S)
    assert gold.debounce_s("artists") == pytest.approx(expected, abs=0.5)
