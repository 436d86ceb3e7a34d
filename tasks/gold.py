"""Gold tasks: incremental upserts for affected ids, then debounced artist aggregates and one
debounced view refresh.

Many merges finishing close together schedule a single ``refresh_views`` and a single
``update_artists`` (a Redis ``SET NX`` flag with a short countdown, or an in-process flag when
there is no Redis): the views are refreshed concurrently, so readers are never blocked, but not
once per track; a popular artist's aggregates are computed once per payment, not once per
setlist naming it (the owed artists are rows in PostgreSQL, so a lost message is re-sent by the
sweeper).
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from celery.utils.log import get_task_logger
from sqlalchemy.exc import IntegrityError

from db.engine import session_scope
from pipeline.gold import (
    artists_of_tracks,
    claim_owed_artists,
    owe_artists,
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
    "update_artists_task",
    "update_tracks",
]

log = get_task_logger(__name__)

REFRESH_DEBOUNCE_S = float(os.environ.get("SONGNODES_REFRESH_DEBOUNCE_S", "5"))
#: Owed artist aggregates are paid this long after the first mark (coalescing the setlists that
#: name a popular artist meanwhile).
ARTISTS_DEBOUNCE_S = float(os.environ.get("SONGNODES_ARTISTS_DEBOUNCE_S", "1"))
#: Artists aggregated per transaction; a payment that fills it goes on with the next batch.
ARTISTS_PER_PAYMENT = 500
#: The wait is stretched to this many times the last run's duration, so that refreshing the
#: views (a whole-view recomputation that grows with the data: 1 s each at 20k rows, 24 runs in
#: a 160 s bench) or paying artists takes a bounded share of the database, ~5% and ~20%.
REFRESH_LOAD_FACTOR = 20.0
ARTISTS_LOAD_FACTOR = 5.0
_FLAG = "songnodes:gold:refresh-pending"
_ARTISTS_FLAG = "songnodes:gold:artists-pending"
_local_flag = threading.Event()
_local_artists_flag = threading.Event()


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


def _first_to_flag(flag: str, local: threading.Event, debounce_s: float) -> bool:
    """True for the first caller since ``flag`` was last cleared (Redis ``SET NX``, or an
    in-process event without Redis); the flag expires on its own should its task be lost."""
    client = _redis()
    if client is not None:
        return bool(client.set(flag, "1", nx=True, ex=int(debounce_s * 12) + 1))
    if local.is_set():
        return False
    local.set()
    return True


def _clear_flag(flag: str, local: threading.Event) -> None:
    client = _redis()
    if client is not None:
        client.delete(flag)
    local.clear()


_local_durations: dict[str, float] = {}


def _last_duration(name: str) -> float:
    """Seconds the last ``name`` run took (0 when unknown), shared through Redis."""
    client = _redis()
    if client is None:
        return _local_durations.get(name, 0.0)
    raw = client.get(f"songnodes:gold:{name}-seconds")
    return float(raw) if raw else 0.0


def _took(name: str, started: float) -> None:
    seconds = time.monotonic() - started
    _local_durations[name] = seconds
    client = _redis()
    if client is not None:
        client.set(f"songnodes:gold:{name}-seconds", f"{seconds:.3f}", ex=3600)


def debounce_s(name: str) -> float:
    """How long a scheduled ``refresh`` or ``artists`` run waits: the configured debounce, or
    its load factor times the last run's duration when that is longer."""
    if name == "refresh":
        return max(REFRESH_DEBOUNCE_S, REFRESH_LOAD_FACTOR * _last_duration(name))
    return max(ARTISTS_DEBOUNCE_S, ARTISTS_LOAD_FACTOR * _last_duration(name))


def schedule_refresh() -> bool:
    """Schedule one refresh unless one is already pending. True when this call scheduled it."""
    wait = debounce_s("refresh")
    if not _first_to_flag(_FLAG, _local_flag, wait):
        return False
    refresh_views_task.apply_async(countdown=publish_countdown(wait))
    return True


def schedule_artists() -> bool:
    """Schedule one payment of owed artist aggregates unless one is pending."""
    wait = debounce_s("artists")
    if not _first_to_flag(_ARTISTS_FLAG, _local_artists_flag, wait):
        return False
    update_artists_task.apply_async(countdown=publish_countdown(wait))
    return True


def _owe_artists_of(track_ids: list[str]) -> None:
    """Mark the tracks' artists as owed (after the tracks' change committed: see
    ``pipeline.gold.owe_artists``) and schedule their payment."""
    with session_scope() as session:
        owe_artists(session, artists_of_tracks(session, track_ids))
    schedule_artists()


@app.task(name="tasks.gold.refresh_views", autoretry_for=TRANSIENT_ERRORS, retry_backoff=True)
def refresh_views_task() -> None:
    """Refresh every gold materialised view (concurrently)."""
    _clear_flag(_FLAG, _local_flag)
    from pipeline.recovery import VIEWS_MARK, mark

    started = time.monotonic()
    with session_scope() as session:
        # now() is the transaction's start: gold changed after it is refreshed next time (the
        # sweeper compares this mark with the latest change, issue 20).
        mark(session, VIEWS_MARK)
        refresh_views(session)
    _took("refresh", started)


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
    _clear_flag(_ARTISTS_FLAG, _local_artists_flag)  # marks from now on schedule a new payment
    paid = 0
    started = time.monotonic()
    while True:
        with session_scope() as session:
            batch = claim_owed_artists(session, ARTISTS_PER_PAYMENT)
        paid += len(batch)
        if len(batch) < ARTISTS_PER_PAYMENT:
            _took("artists", started)
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
        upsert_track_analytics(session, track_ids)  # appearances changed
    _owe_artists_of(track_ids)
    schedule_refresh()
    return playlist_id
