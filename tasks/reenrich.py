"""Beat task: re-enrich stale fields within each provider's budget (``pipeline.reenrich``).

Named ``tasks.maintenance.*`` so it runs on the maintenance queue with the other beat tasks.
Settings (environment): ``SONGNODES_REENRICH_SHARE`` (share of each provider's rate limit it may
use, default 0.2: the rest is headroom for fresh ingest), ``SONGNODES_REENRICH_PERIOD_S`` (its
beat interval, default 300) and ``SONGNODES_REENRICH_MAX_TRACKS`` (tracks per beat, default 500).
"""

from __future__ import annotations

import os
from typing import Any

from celery.utils.log import get_task_logger

from db.engine import session_scope
from pipeline.reenrich import plan_reenrichment
from pipeline.singleflight import release_orphans
from tasks.app import app
from tasks.dispatch import dispatch

__all__ = ["PERIOD_S", "reenrich_stale"]

log = get_task_logger(__name__)

SHARE = float(os.environ.get("SONGNODES_REENRICH_SHARE", "0.2"))
PERIOD_S = float(os.environ.get("SONGNODES_REENRICH_PERIOD_S", "300"))
MAX_TRACKS = int(os.environ.get("SONGNODES_REENRICH_MAX_TRACKS", "500"))


@app.task(name="tasks.maintenance.reenrich_stale")
def reenrich_stale(
    share: float = SHARE, period_s: float = PERIOD_S, max_tracks: int = MAX_TRACKS
) -> dict[str, Any]:
    """Open this period's re-enrichment run (and release sightings whose flight leader ended
    without releasing them); enqueue after commit."""
    with session_scope() as session:
        done = plan_reenrichment(
            session, period_s=period_s, share=share, max_tracks=max_tracks
        )
        orphans = release_orphans(session)
    dispatch(done.next.extend(orphans))
    summary = {
        "run_id": done.run_id,
        "tracks": done.tracks,
        "skipped_for_budget": done.skipped_for_budget,
        "spent": done.spent,
        "released": len(orphans.merges) + len({j for js in orphans.lookups.values() for j in js}),
    }
    if done.tracks:
        log.info("re-enrichment run opened: %s", summary)
    return summary
