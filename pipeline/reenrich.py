"""Scheduled re-enrichment (issue 17): stale fields asked again, oldest first, within budget.

Each beat (``tasks.maintenance.reenrich_stale``, every ``period_s``) takes silver tracks with a
field that is not fresh under today's configuration (``field_check_is_fresh``): tracks with no
check at all first (enriched before migration 017), then by their oldest stale check. Each
track costs, at its round one, one call at every provider the stale fields' waterfalls plan;
a track is taken only while every such provider has budget left, so later (rarer) rounds and
fresh ingest share the rest.

Budget of a provider for one period: ``share`` of what its rate limit allows in the period
(``rate_limit_per_second x period_s``, and ``rate_limit_per_day`` pro rata), and never more
than what the calls already made in the last period (fresh ingest, mostly) left of it. So
re-enrichment uses at most ``share`` of a provider, and none when ingest is using it fully.
Scraper providers cost nothing and have no budget. A provider with no limit configured gets
``max_tracks`` calls.

The jobs are opened in one ``incremental`` run triggered by ``reenrich`` and planned by
``pipeline.identity_first.plan_known`` with the track as already matched: only stale fields are
asked, every other field is reused (with its reuse row), and merge writes the new answers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from pipeline.enrich import Next
from pipeline.runs import finish_run_if_done, load_plan, start_run
from pipeline.scraper_providers import SCRAPER_PROVIDERS
from pipeline.waterfall import Plan, next_lookups

__all__ = ["Reenrichment", "budgets", "plan_reenrichment", "stale_tracks"]

_PROVIDERS_SQL = text(
    """
    SELECT p.provider_name, p.rate_limit_per_second::float8 AS per_s, p.rate_limit_per_day,
           coalesce(u.calls, 0) AS used
    FROM enrichment_providers p
    LEFT JOIN (SELECT provider, sum(api_calls) AS calls FROM enrichment_lookups
               WHERE updated_at > now() - make_interval(secs => :period)
               GROUP BY provider) u ON u.provider = p.provider_name
    WHERE p.enabled
    """
)


def budgets(
    session: Session, period_s: float, share: float, default: int
) -> dict[str, int]:
    """Calls each enabled provider may spend on re-enrichment this period (see module doc)."""
    out: dict[str, int] = {}
    for name, per_s, per_day, used in session.execute(_PROVIDERS_SQL, {"period": period_s}):
        if name in SCRAPER_PROVIDERS:
            continue
        caps = []
        if per_s is not None:
            caps.append(float(per_s) * period_s)
        if per_day is not None:
            caps.append(float(per_day) * period_s / 86400)
        if not caps:
            out[name] = default
            continue
        cap = min(caps)
        out[name] = max(0, min(math.floor(cap * share), math.floor(cap - float(used))))
    return out


_STALE_SQL = text(
    """
    WITH cfg AS (
        SELECT metadata_field, to_jsonb(c) AS c FROM metadata_enrichment_config c WHERE enabled
    ), never AS (
        SELECT s.id, s.bronze_id, '-infinity'::timestamptz AS oldest,
               (SELECT array_agg(metadata_field ORDER BY metadata_field) FROM cfg) AS stale
        FROM silver_enriched_tracks s
        WHERE s.bronze_id IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM silver_field_checks k WHERE k.silver_track_id = s.id)
          AND NOT EXISTS (SELECT 1 FROM enrichment_jobs j WHERE j.reuse_silver_id = s.id
                          AND j.status IN ('enriching', 'merging'))
        ORDER BY s.created_at LIMIT :scan
    ), old AS (
        SELECT k.silver_track_id AS id, k.checked_at, k.metadata_field
        FROM silver_field_checks k JOIN cfg ON cfg.metadata_field = k.metadata_field
        WHERE NOT field_check_is_fresh(k.checked_at, k.config_hash, cfg.c)
        ORDER BY k.checked_at LIMIT :scan * 20
    )
    SELECT id::text, bronze_id::text, stale FROM never
    UNION ALL
    SELECT * FROM (
        SELECT o.id::text, s.bronze_id::text, array_agg(o.metadata_field ORDER BY o.metadata_field)
        FROM old o JOIN silver_enriched_tracks s ON s.id = o.id
        WHERE s.bronze_id IS NOT NULL
          -- not while a job of this track is still open (a re-enrichment of the last beat)
          AND NOT EXISTS (SELECT 1 FROM enrichment_jobs j WHERE j.reuse_silver_id = o.id
                          AND j.status IN ('enriching', 'merging'))
        GROUP BY o.id, s.bronze_id ORDER BY min(o.checked_at)
    ) t
    """
)


def stale_tracks(session: Session, scan: int) -> list[tuple[str, str, list[str]]]:
    """(silver id, its bronze id, stale fields) of up to ``scan`` never-checked tracks and the
    tracks of the oldest stale checks, oldest first."""
    return [(s, b, list(f)) for s, b, f in session.execute(_STALE_SQL, {"scan": scan})]


@dataclass
class Reenrichment:
    run_id: str | None = None
    tracks: int = 0
    skipped_for_budget: int = 0
    spent: dict[str, int] = field(default_factory=dict)
    budget: dict[str, int] = field(default_factory=dict)
    next: Next = field(default_factory=Next)


def _choose(
    plan: Plan,
    candidates: list[tuple[str, str, list[str]]],
    budget: Mapping[str, int],
    max_tracks: int,
) -> tuple[list[tuple[str, str]], dict[str, int], int]:
    left = dict(budget)
    spent: dict[str, int] = {}
    chosen: list[tuple[str, str]] = []
    skipped = 0
    for silver_id, bronze_id, stale in candidates:
        if len(chosen) >= max_tracks:
            break
        paid = [p for p in next_lookups(plan, [], [], stale) if p not in SCRAPER_PROVIDERS]
        if any(left.get(p, 0) < 1 for p in paid):
            skipped += 1
            continue
        for p in paid:
            left[p] -= 1
            spent[p] = spent.get(p, 0) + 1
        chosen.append((silver_id, bronze_id))
    return chosen, spent, skipped


def plan_reenrichment(
    session: Session,
    *,
    period_s: float = 300.0,
    share: float = 0.2,
    max_tracks: int = 500,
    budget: Mapping[str, int] | None = None,
) -> Reenrichment:
    """Open one re-enrichment run for the stale tracks this period's budgets allow (see module
    docstring); the caller dispatches ``result.next`` after commit."""
    from pipeline.identity_first import plan_known

    out = Reenrichment()
    out.budget = dict(budget) if budget is not None else budgets(session, period_s, share,
                                                                 max_tracks)  # fmt: skip
    candidates = stale_tracks(session, max_tracks * 2)
    if not candidates:
        return out
    run_id = str(start_run(session, "incremental", "reenrich"))
    out.run_id = run_id
    plan = load_plan(session, run_id)
    chosen, out.spent, out.skipped_for_budget = _choose(plan, candidates, out.budget, max_tracks)
    jobs: dict[str, Any] = {}
    if chosen:
        jobs = dict(
            session.execute(
                text(
                    "INSERT INTO enrichment_jobs (run_id, bronze_track_id) "
                    "SELECT CAST(:run AS uuid), b FROM unnest(CAST(:b AS uuid[])) AS b "
                    "ON CONFLICT (run_id, bronze_track_id) DO NOTHING "
                    "RETURNING bronze_track_id::text, id::text"
                ),
                {"run": run_id, "b": [b for _, b in chosen]},
            ).all()
        )
    sources: dict[str, str] = dict(
        session.execute(
            text(
                "SELECT id::text, source FROM bronze_scraped_tracks "
                "WHERE id = ANY(CAST(:b AS uuid[]))"
            ),
            {"b": list(jobs)},
        ).all()
    )
    matched = {
        jobs[b]: (s, sources.get(b, "")) for s, b in chosen if b in jobs
    }
    out.tracks = len(matched)
    out.next = plan_known(session, run_id, plan, matched)
    if not out.next:
        finish_run_if_done(session, run_id)
    return out
