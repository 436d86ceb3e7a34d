"""Pipeline runs: open one with a configuration snapshot, load its plan, close it with totals."""

from __future__ import annotations

import functools
import json
from collections import OrderedDict
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.orm import Session

from pipeline import lineage_events
from pipeline.waterfall import Plan, plan_from_snapshot

__all__ = ["finish_run_if_done", "load_plan", "run_snapshot", "start_run"]


def start_run(
    session: Session,
    run_type: str,
    triggered_by: str,
    environment: str = "production",
    sources: list[str] | None = None,
) -> UUID:
    """Open a run through the SQL ``start_pipeline_run`` (it snapshots today's configuration)."""
    run_id: UUID = session.execute(
        text("SELECT start_pipeline_run(:t, :by, :env, :src)"),
        {"t": run_type, "by": triggered_by, "env": environment, "src": sources},
    ).scalar_one()
    lineage_events.run_started(session, run_id)  # issue 18: no-op unless configured
    return run_id


def run_snapshot(session: Session, run_id: UUID | str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(waterfall snapshot, provider snapshot) stored on a run."""
    row = session.execute(
        text(
            "SELECT waterfall_config_snapshot, provider_config_snapshot "
            "FROM enrichment_pipeline_runs WHERE id = :id"
        ),
        {"id": str(run_id)},
    ).first()
    if row is None:
        raise LookupError(f"enrichment_pipeline_runs has no run {run_id}")
    return dict(row[0] or {}), dict(row[1] or {})


@functools.lru_cache(maxsize=256)
def _plan_cached(waterfall_json: str, providers_json: str) -> Plan:
    # A run's snapshot never changes, so its plan is computed once per process.
    return plan_from_snapshot(list(json.loads(waterfall_json).values()), json.loads(providers_json))


#: Plans by run. A run's snapshot is written when it starts (a replay adopts its historical
#: snapshot before creating any job) and never changes after, so the plan can be kept per run.
_PLANS: OrderedDict[str, Plan] = OrderedDict()
_PLANS_MAX = 512


def load_plan(
    session: Session, run_id: UUID | str, config_run_id: UUID | str | None = None
) -> Plan:
    """The waterfall plan of a run (or of ``config_run_id``'s snapshot, for time-travel replay)."""
    key = str(config_run_id or run_id)
    plan = _PLANS.get(key)
    if plan is None:
        waterfall, providers = run_snapshot(session, key)
        plan = _plan_cached(
            json.dumps(waterfall, sort_keys=True), json.dumps(providers, sort_keys=True)
        )
        _PLANS[key] = plan
        while len(_PLANS) > _PLANS_MAX:
            _PLANS.popitem(last=False)
    return plan


def finish_run_if_done(session: Session, run_id: UUID | str) -> bool:
    """Close a run once none of its jobs is still open; totals come from its lookups and jobs."""
    # Lock the run row BEFORE looking at its jobs. Two merges finishing together would otherwise
    # each see the other's job as still open (not yet committed) and neither would close the
    # run. With the lock, the second one's check runs after the first commits and sees it.
    # NO KEY UPDATE, not UPDATE: every merge already holds a KEY SHARE lock on this row (the
    # foreign keys of the rows it inserted); FOR UPDATE would conflict with those and deadlock.
    status = session.execute(
        text("SELECT run_status FROM enrichment_pipeline_runs WHERE id = :run FOR NO KEY UPDATE"),
        {"run": str(run_id)},
    ).scalar_one_or_none()
    if status != "running":
        return False
    # Cheap check first (partial index on open jobs): this runs after every merge, and counting
    # all of a 10k-job run's rows each time would make a run quadratic.
    still_open = session.execute(
        text(
            "SELECT EXISTS (SELECT 1 FROM enrichment_jobs WHERE run_id = :run "
            "AND status IN ('enriching', 'merging'))"
        ),
        {"run": str(run_id)},
    ).scalar_one()
    if still_open:
        return False
    row = session.execute(
        text(
            """
            SELECT count(*) FILTER (WHERE status IN ('enriching', 'merging')) AS open,
                   count(*) AS total,
                   count(*) FILTER (WHERE status = 'merged' AND silver_track_id IS NOT NULL) AS ok,
                   count(*) FILTER (WHERE status = 'failed') AS failed,
                   count(*) FILTER (WHERE status = 'merged' AND silver_track_id IS NULL) AS skipped
            FROM enrichment_jobs WHERE run_id = :run
            """
        ),
        {"run": str(run_id)},
    ).one()
    if row.open:
        return False
    session.execute(
        text(
            """
            UPDATE enrichment_pipeline_runs r SET
                records_processed = :total, records_succeeded = :ok,
                records_failed = :failed, records_skipped = :skipped,
                total_api_calls = coalesce(l.calls, 0),
                total_api_cost_usd = coalesce(l.cost, 0),
                avg_processing_time_ms = l.latency
            FROM (SELECT sum(api_calls) AS calls, sum(cost_usd) AS cost,
                         avg(latency_ms)::int AS latency
                  FROM enrichment_lookups l JOIN enrichment_jobs j ON j.id = l.job_id
                  WHERE j.run_id = :run) l
            WHERE r.id = :run
            """
        ),
        {
            "run": str(run_id),
            "total": row.total,
            "ok": row.ok,
            "failed": row.failed,
            "skipped": row.skipped,
        },
    )
    final = "completed" if not row.failed else ("partial" if row.ok else "failed")
    session.execute(
        text("SELECT complete_pipeline_run(:run, :status)"), {"run": str(run_id), "status": final}
    )
    lineage_events.run_finished(session, run_id)  # issue 18: no-op unless configured
    return True
