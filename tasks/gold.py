"""Gold tasks: incremental upserts for affected ids, then one debounced view refresh.

Many merges finishing close together schedule a single ``refresh_views`` (a Redis ``SET NX`` flag
with a short countdown, or an in-process flag when there is no Redis): the views are refreshed
concurrently, so readers are never blocked, but not once per track.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from celery.utils.log import get_task_logger
from sqlalchemy.exc import IntegrityError

from db.engine import session_scope
from pipeline.gold import (
    artists_of_tracks,
    refresh_views,
    upsert_artist_analytics,
    upsert_playlist_analytics,
    upsert_track_analytics,
)
from pipeline.merge import merge_playlist
from tasks.app import app
from tasks.base import TRANSIENT_ERRORS

__all__ = ["merge_playlist_task", "refresh_views_task", "schedule_refresh", "update_tracks"]

log = get_task_logger(__name__)

REFRESH_DEBOUNCE_S = float(os.environ.get("SONGNODES_REFRESH_DEBOUNCE_S", "5"))
_FLAG = "songnodes:gold:refresh-pending"
_local_flag = threading.Event()


def _redis() -> Any:
    url = os.environ.get("REDIS_URL")
    if not url:
        return None
    import redis

    return redis.Redis.from_url(url)


def schedule_refresh() -> bool:
    """Schedule one refresh unless one is already pending. True when this call scheduled it."""
    client = _redis()
    if client is not None:
        if not client.set(_FLAG, "1", nx=True, ex=int(REFRESH_DEBOUNCE_S * 12) + 1):
            return False
    elif _local_flag.is_set():
        return False
    else:
        _local_flag.set()
    refresh_views_task.apply_async(countdown=REFRESH_DEBOUNCE_S)
    return True


@app.task(name="tasks.gold.refresh_views", autoretry_for=TRANSIENT_ERRORS, retry_backoff=True)
def refresh_views_task() -> None:
    """Refresh every gold materialised view (concurrently)."""
    client = _redis()
    if client is not None:
        client.delete(_FLAG)
    _local_flag.clear()
    from pipeline.recovery import VIEWS_MARK, mark

    with session_scope() as session:
        # now() is the transaction's start: gold changed after it is refreshed next time (the
        # sweeper compares this mark with the latest change, issue 20).
        mark(session, VIEWS_MARK)
        refresh_views(session)


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
    # Artists in a transaction of their own: their aggregates are the slow part, and holding
    # the tracks' gold rows locked through them made every other upsert of a popular track
    # wait (issue 17: a hit's gold row is upserted by most merge and playlist batches).
    with session_scope() as session:
        upsert_artist_analytics(session, artists_of_tracks(session, silver_ids))
    schedule_refresh()
    return n


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
    with session_scope() as session:  # see update_tracks: gold track rows unlocked first
        upsert_artist_analytics(session, artists_of_tracks(session, track_ids))
    schedule_refresh()
    return playlist_id
