"""Gold tasks: incremental upserts for affected ids, then debounced artist aggregates and track
appearances, and one debounced view refresh.

Many merges finishing close together schedule a single ``refresh_views``, a single
``update_artists`` and a single ``update_owed_tracks`` (a Redis ``SET NX`` flag with a short
countdown, or an in-process flag when there is no Redis): the views are refreshed concurrently,
so readers are never blocked, but not once per track; a popular artist's aggregates and a hit's
appearance counts are computed once per payment, not once per setlist naming them (the owed
artists and tracks are rows in PostgreSQL, so a lost message is re-sent by the sweeper).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from celery.utils.log import get_task_logger
from sqlalchemy.exc import IntegrityError

from db.engine import session_scope
from pipeline.gold import (
    artists_of_tracks,
    claim_owed,
    owe_artists,
    owe_tracks,
    refresh_views,
    upsert_playlist_analytics,
    upsert_track_analytics,
)
from pipeline.merge import merge_playlist
from tasks.app import app
from tasks.base import TRANSIENT_ERRORS, publish_countdown

__all__ = [
    "debounce_s",
    "merge_playlist_task",
    "refresh_views_task",
    "schedule_artists",
    "schedule_refresh",
    "schedule_tracks",
    "update_artists_task",
    "update_owed_tracks_task",
    "update_tracks",
]

log = get_task_logger(__name__)

REFRESH_DEBOUNCE_S = float(os.environ.get("SONGNODES_REFRESH_DEBOUNCE_S", "5"))
#: Owed artist aggregates are paid this long after the first mark (coalescing the setlists that
#: name a popular artist meanwhile).
ARTISTS_DEBOUNCE_S = float(os.environ.get("SONGNODES_ARTISTS_DEBOUNCE_S", "1"))
#: Owed track appearances (a setlist named them, migration 023) are paid this long after the
#: first mark.
TRACKS_DEBOUNCE_S = float(os.environ.get("SONGNODES_TRACKS_DEBOUNCE_S", "1"))
#: Artists (and tracks) aggregated per transaction; a payment that fills it goes on with the
#: next batch.
ARTISTS_PER_PAYMENT = 500
TRACKS_PER_PAYMENT = 500
#: The wait is stretched to this many times the last run's duration, so that refreshing the
#: views (a whole-view recomputation that grows with the data: 1 s each at 20k rows, 24 runs in
#: a 160 s bench) or paying artists takes a bounded share of the database, ~5% and ~20%.
REFRESH_LOAD_FACTOR = 20.0
ARTISTS_LOAD_FACTOR = 5.0
TRACKS_LOAD_FACTOR = 5.0


_clients: dict[tuple[int, str], Any] = {}


def _redis() -> Any:
    """This process's client for ``REDIS_URL`` (None without it). Kept per process: a client
    per call opened a new connection for every flag check (two per gold task)."""
    url = os.environ.get("REDIS_URL")
    if not url:
        return None
    key = (os.getpid(), url)
    client = _clients.get(key)
    if client is None:
        import redis

        client = _clients[key] = redis.Redis.from_url(url, socket_timeout=5)
    return client


_local_durations: dict[str, float] = {}


@dataclass(frozen=True)
class _Debounce:
    """One debounced gold run (``refresh``, ``artists``): the first caller since the last run
    started schedules it (a Redis ``SET NX`` flag, or an in-process event without Redis; the
    flag expires on its own should its task be lost), to run after :meth:`wait` seconds."""

    name: str
    setting_s: float
    load_factor: float
    local: threading.Event = field(default_factory=threading.Event)

    @property
    def flag(self) -> str:
        return f"songnodes:gold:{self.name}-pending"

    @property
    def duration_key(self) -> str:
        return f"songnodes:gold:{self.name}-seconds"

    def wait(self) -> float:
        """The setting, or the load factor times the last run's duration when that is longer
        (shared through Redis; 0 when unknown)."""
        client = _redis()
        if client is None:
            last = _local_durations.get(self.name, 0.0)
        else:
            raw = client.get(self.duration_key)
            last = float(raw) if raw else 0.0
        return max(self.setting_s, self.load_factor * last)

    def schedule(self, task: Any) -> bool:
        """Send ``task`` unless a run is already pending; True when this call sent it."""
        wait = self.wait()
        client = _redis()
        if client is not None:
            if not client.set(self.flag, "1", nx=True, ex=int(wait * 12) + 1):
                return False
        elif self.local.is_set():
            return False
        else:
            self.local.set()
        task.apply_async(countdown=publish_countdown(wait))
        return True

    def started(self) -> None:
        """A run starts: changes from now on schedule the next one."""
        client = _redis()
        if client is not None:
            client.delete(self.flag)
        self.local.clear()

    def took(self, started: float) -> None:
        """Record how long the run that began at ``started`` (``time.monotonic()``) took."""
        seconds = time.monotonic() - started
        _local_durations[self.name] = seconds
        client = _redis()
        if client is not None:
            client.set(self.duration_key, f"{seconds:.3f}", ex=3600)


_DEBOUNCES = {
    "refresh": _Debounce("refresh", REFRESH_DEBOUNCE_S, REFRESH_LOAD_FACTOR),
    "artists": _Debounce("artists", ARTISTS_DEBOUNCE_S, ARTISTS_LOAD_FACTOR),
    "tracks": _Debounce("tracks", TRACKS_DEBOUNCE_S, TRACKS_LOAD_FACTOR),
}


def debounce_s(name: str) -> float:
    """How long a scheduled ``refresh``, ``artists`` or ``tracks`` run waits: the configured
    debounce, or its load factor times the last run's duration when that is longer."""
    return _DEBOUNCES[name].wait()


def schedule_refresh() -> bool:
    """Schedule one refresh unless one is already pending. True when this call scheduled it."""
    return _DEBOUNCES["refresh"].schedule(refresh_views_task)


def schedule_artists() -> bool:
    """Schedule one payment of owed artist aggregates unless one is pending."""
    return _DEBOUNCES["artists"].schedule(update_artists_task)


def schedule_tracks() -> bool:
    """Schedule one payment of owed track appearances unless one is pending."""
    return _DEBOUNCES["tracks"].schedule(update_owed_tracks_task)


def _owe_artists_of(track_ids: list[str]) -> None:
    """Mark the tracks' artists as owed (after the tracks' change committed: see
    ``pipeline.gold.owe_artists``) and schedule their payment."""
    with session_scope() as session:
        owe_artists(session, artists_of_tracks(session, track_ids))
    schedule_artists()


@app.task(name="tasks.gold.refresh_views", autoretry_for=TRANSIENT_ERRORS, retry_backoff=True)
def refresh_views_task() -> None:
    """Refresh every gold materialised view (concurrently)."""
    _DEBOUNCES["refresh"].started()
    from pipeline.recovery import VIEWS_MARK, mark

    started = time.monotonic()
    with session_scope() as session:
        # now() is the transaction's start: gold changed after it is refreshed next time (the
        # sweeper compares this mark with the latest change, issue 20).
        mark(session, VIEWS_MARK)
        refresh_views(session)
    _DEBOUNCES["refresh"].took(started)


@app.task(
    name="tasks.gold.update_tracks",
    autoretry_for=(*TRANSIENT_ERRORS, IntegrityError),
    retry_backoff=True,
    max_retries=8,
)
def update_tracks(silver_ids: list[str]) -> int:
    """Upsert gold rows of these tracks and of their artists."""
    with session_scope() as session:
        n = upsert_track_analytics(session, silver_ids)
    # Artists are owed, not aggregated here: their aggregates are the slow part (issue 17).
    _owe_artists_of(silver_ids)
    schedule_refresh()
    return n


@app.task(name="tasks.gold.update_artists", autoretry_for=TRANSIENT_ERRORS, retry_backoff=True)
def update_artists_task() -> int:
    """Pay the owed artist aggregates, a batch per transaction, until none is owed."""
    return _pay("artists", ARTISTS_PER_PAYMENT)


def _pay(kind: str, per_payment: int) -> int:
    """Pay the owed ``kind`` rows, a batch per transaction, until none is owed."""
    _DEBOUNCES[kind].started()  # marks from now on schedule a new payment
    paid = 0
    started = time.monotonic()
    while True:
        with session_scope() as session:
            batch = claim_owed(session, kind, per_payment)
        paid += len(batch)
        if len(batch) < per_payment:
            _DEBOUNCES[kind].took(started)
            return paid


@app.task(
    name="tasks.gold.update_owed_tracks",
    autoretry_for=(*TRANSIENT_ERRORS, IntegrityError),
    retry_backoff=True,
)
def update_owed_tracks_task() -> int:
    """Pay the owed track appearances (migration 023), a batch per transaction; the views are
    refreshed after (debounced)."""
    paid = _pay("tracks", TRACKS_PER_PAYMENT)
    if paid:
        schedule_refresh()
    return paid


@app.task(
    name="tasks.gold.merge_playlist",
    autoretry_for=(*TRANSIENT_ERRORS, IntegrityError),
    retry_backoff=True,
    max_retries=8,
)
def merge_playlist_task(bronze_playlist_id: str) -> str | None:
    """Build the silver playlist once all its tracks are merged; then its gold rows."""
    from sqlalchemy import text

    with session_scope() as session:
        playlist_id = merge_playlist(session, bronze_playlist_id)
        if playlist_id is None:
            return None
        upsert_playlist_analytics(session, [playlist_id])
        track_ids = [
            str(r[0])
            for r in session.execute(
                text(
                    "SELECT track_id FROM silver_playlist_tracks "
                    "WHERE playlist_id = :p AND track_id IS NOT NULL"  # 012: unidentified rows
                ),
                {"p": playlist_id},
            )
        ]
        # Appearances changed: the tracks' gold rows are owed (paid debounced: a hit once per
        # payment rather than once per setlist naming it), marked in this transaction so a
        # worker killed after the commit cannot lose the mark (the sweeper re-sends a lost
        # payment while marks remain).
        owe_tracks(session, track_ids)
    schedule_tracks()
    _owe_artists_of(track_ids)
    schedule_refresh()
    return playlist_id
