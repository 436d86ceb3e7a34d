"""Beat-scheduled maintenance tasks (schedule in ``celeryconfig.beat_schedule``)."""

from __future__ import annotations

import datetime as dt
import os

from celery.utils.log import get_task_logger

from db.engine import session_scope
from pipeline import maintenance
from pipeline.enrich import create_jobs
from pipeline.runs import start_run
from tasks.app import app
from tasks.dispatch import dispatch

__all__ = [
    "check_provider_health",
    "compute_data_quality_metrics",
    "reap_stuck_runs",
    "rollup_provider_performance",
    "sweep_stalled",
]

log = get_task_logger(__name__)

SWEEP_AFTER_S = int(os.environ.get("SONGNODES_SWEEP_AFTER_S", "600"))
REAP_AFTER_S = int(os.environ.get("SONGNODES_REAP_AFTER_S", str(6 * 3600)))


def _date(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


@app.task(name="tasks.maintenance.rollup_provider_performance")
def rollup_provider_performance(day: str | None = None) -> int:
    """Nightly: yesterday's provider x field performance (idempotent upsert)."""
    with session_scope() as session:
        return maintenance.rollup_provider_performance(session, _date(day))


@app.task(name="tasks.maintenance.compute_data_quality_metrics")
def compute_data_quality_metrics(day: str | None = None) -> None:
    """Daily: one quality row per layer (idempotent upsert)."""
    with session_scope() as session:
        maintenance.compute_data_quality_metrics(session, _date(day))


@app.task(name="tasks.maintenance.check_provider_health")
def check_provider_health() -> dict[str, str]:
    """Copy every provider's circuit-breaker state into ``enrichment_providers``."""
    from providers.registry import available_providers
    from tasks.enrich import HEALTH_BY_STATE, provider_instance

    states: dict[str, str] = {}
    for name in available_providers():
        breaker = getattr(provider_instance(name), "breaker", None)
        if breaker is None:
            continue
        # ``state`` is a property (it read ``breaker.state()`` once: a TypeError every run).
        state = breaker.state
        states[name] = HEALTH_BY_STATE.get(str(getattr(state, "value", state)), "degraded")
    with session_scope() as session:
        maintenance.update_provider_health(session, states)
    return states


@app.task(name="tasks.maintenance.sweep_stalled")
def sweep_stalled(older_than_s: int = SWEEP_AFTER_S) -> dict[str, int]:
    """Heal lost messages: re-enqueue stalled lookups/merges, start bronze rows with no job."""
    with session_scope() as session:
        nxt, orphans = maintenance.sweep_stalled(session, older_than_s)
        if orphans:
            run_id = start_run(session, "incremental", "sweeper")
            nxt.extend(create_jobs(session, run_id, orphans))
        gold = maintenance.stale_gold(session, older_than_s)
    dispatch(nxt)
    if gold:
        from tasks.gold import update_tracks

        update_tracks.delay(gold)
    counts = {
        "lookups": sum(len(v) for v in nxt.lookups.values()),
        "merges": len(nxt.merges),
        "orphans": len(orphans),
        "gold": len(gold),
    }
    if any(counts.values()):
        log.warning("sweeper re-enqueued stalled work: %s", counts)
    return counts


@app.task(name="tasks.maintenance.reap_stuck_runs")
def reap_stuck_runs(older_than_s: int = REAP_AFTER_S) -> list[str]:
    """Close runs stuck in ``running``."""
    with session_scope() as session:
        return maintenance.reap_stuck_runs(session, older_than_s)
