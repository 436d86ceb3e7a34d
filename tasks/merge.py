"""Merge tasks: resolve the waterfall into silver, then hand affected ids to gold."""

from __future__ import annotations

from celery.utils.log import get_task_logger
from sqlalchemy.exc import IntegrityError

from db.engine import session_scope
from pipeline.merge import complete_playlists, merge_batch
from pipeline.singleflight import release
from tasks.app import app
from tasks.base import TRANSIENT_ERRORS
from tasks.dispatch import dispatch

__all__ = ["merge_jobs"]

log = get_task_logger(__name__)


@app.task(
    name="tasks.merge.merge_jobs",
    autoretry_for=(*TRANSIENT_ERRORS, IntegrityError),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=8,
)
def merge_jobs(job_ids: list[str]) -> dict[str, int]:
    """Merge a batch of jobs in one transaction (a merged job is skipped on redelivery)."""
    from tasks.gold import merge_playlist_task, update_tracks

    silver_ids: list[str] = []
    playlists: set[str] = set()
    with session_scope() as session:
        results = merge_batch(session, job_ids)
        # Sightings waiting for these jobs' lookups (issue 17) are planned in the same commit.
        followers = release(session, job_ids)
    dispatch(followers)
    for result in results:
        # Already-merged jobs (a redelivered or retried batch) are sent to gold again too: the
        # first attempt may have merged them and then failed before it enqueued their gold
        # upsert, which is idempotent.
        if result.silver_track_id and not result.linked_only:  # linked only: gold unchanged
            silver_ids.append(result.silver_track_id)
        playlists.update(result.bronze_playlist_ids)
    if silver_ids:
        update_tracks.delay(sorted(set(silver_ids)))
    if playlists:  # after commit: only setlists whose every track is now merged
        with session_scope() as session:
            ready = complete_playlists(session, sorted(playlists))
        for bronze_playlist_id in ready:
            merge_playlist_task.delay(bronze_playlist_id)
    return {"merged": len(silver_ids), "playlists": len(playlists)}
