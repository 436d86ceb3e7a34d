"""Scheduled maintenance (Celery beat): rollups, quality metrics, health, sweeper, reaper.

Every function is idempotent: running it twice for the same period changes nothing (upserts on
the period's unique key), so beat may fire late, twice, or be re-run by hand.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from pipeline.enrich import Next

__all__ = [
    "find_stalled_work",
    "reap_runs",
    "record_quality_metrics",
    "resend_stuck_runs",
    "rollup_providers",
    "stale_gold",
    "update_provider_health",
]


def _day(day: dt.date | None) -> dt.date:
    return day or (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1))


def rollup_providers(session: Session, day: dt.date | None = None) -> int:
    """One ``provider_performance_history`` row per provider x field for ``day`` (UTC)."""
    d = _day(day)
    result = session.execute(
        text("""
            INSERT INTO provider_performance_history AS h
                (provider_name, metadata_field, request_count, success_count, avg_confidence,
                 avg_response_time_ms, compared_count, agreement_count, chosen_count,
                 total_cost_usd, period_start, period_end)
            SELECT t.provider_used, t.metadata_field, count(*),
                   count(*) FILTER (WHERE t.success),
                   round(avg(t.provider_confidence), 2), round(avg(t.processing_time_ms)),
                   -- 016 (issue #19): the provider's answer against the value the merge of the
                   -- same run, track and field chose (as stored), and what its calls cost.
                   count(m.id) FILTER (WHERE t.success),
                   count(m.id) FILTER (WHERE t.success AND m.output_value = t.output_value),
                   count(m.id) FILTER (WHERE m.provider_used = t.provider_used),
                   coalesce(sum(t.api_cost_usd), 0),
                   CAST(:start AS timestamptz), CAST(:end AS timestamptz)
            FROM enrichment_transformations t
            JOIN enrichment_providers p ON p.provider_name = t.provider_used
            JOIN metadata_enrichment_config c ON c.metadata_field = t.metadata_field
            LEFT JOIN LATERAL (
                SELECT m.id, m.output_value, m.provider_used FROM enrichment_transformations m
                WHERE m.run_id = t.run_id AND m.bronze_id = t.bronze_id
                  AND m.metadata_field = t.metadata_field AND m.transformation_type = 'merge'
                ORDER BY m.created_at DESC LIMIT 1
            ) m ON TRUE
            WHERE t.transformation_type = 'enrichment'
              AND t.created_at >= CAST(:start AS timestamptz)
              AND t.created_at < CAST(:end AS timestamptz)
            GROUP BY t.provider_used, t.metadata_field
            ON CONFLICT (provider_name, metadata_field, period_start, period_end) DO UPDATE SET
                request_count = EXCLUDED.request_count, success_count = EXCLUDED.success_count,
                avg_confidence = EXCLUDED.avg_confidence,
                avg_response_time_ms = EXCLUDED.avg_response_time_ms,
                compared_count = EXCLUDED.compared_count,
                agreement_count = EXCLUDED.agreement_count,
                chosen_count = EXCLUDED.chosen_count,
                total_cost_usd = EXCLUDED.total_cost_usd"""),
        {
            "start": dt.datetime.combine(d, dt.time(), dt.UTC),
            "end": dt.datetime.combine(d + dt.timedelta(days=1), dt.time(), dt.UTC),
        },
    )
    # Rolling 7-day figures on the registry, which the health query in the seed reads.
    session.execute(
        text("""
        UPDATE enrichment_providers p SET
            success_rate = s.rate, avg_confidence_score = s.conf, avg_response_time_ms = s.ms
        FROM (SELECT provider_name,
                     round(sum(success_count)::numeric / nullif(sum(request_count), 0), 4) AS rate,
                     round(avg(avg_confidence), 2) AS conf, round(avg(avg_response_time_ms)) AS ms
              FROM provider_performance_history
              WHERE period_start >= now() - interval '7 days'
              GROUP BY provider_name) s
        WHERE p.provider_name = s.provider_name""")
    )
    return int(getattr(result, "rowcount", 0) or 0)


def record_quality_metrics(session: Session, day: dt.date | None = None) -> None:
    """One daily ``data_quality_metrics`` row per layer (upsert: re-running replaces it)."""
    d = day or dt.datetime.now(dt.UTC).date()
    params: dict[str, Any] = {"d": d}
    upsert = """
        ON CONFLICT (metric_date, metric_hour, data_layer) DO UPDATE SET
            total_records = EXCLUDED.total_records, valid_records = EXCLUDED.valid_records,
            warning_records = EXCLUDED.warning_records, failed_records = EXCLUDED.failed_records,
            avg_field_completeness = EXCLUDED.avg_field_completeness,
            avg_quality_score = EXCLUDED.avg_quality_score,
            avg_enrichment_confidence = EXCLUDED.avg_enrichment_confidence,
            field_completeness = EXCLUDED.field_completeness,
            provider_success_rates = EXCLUDED.provider_success_rates"""
    session.execute(
        text(
            """
        INSERT INTO data_quality_metrics (metric_date, data_layer, total_records, valid_records,
                                          failed_records)
        SELECT :d, 'bronze', (SELECT count(*) FROM bronze_scraped_tracks),
               (SELECT count(*) FROM bronze_scraped_tracks),
               (SELECT count(*) FROM ingest_quarantine)"""
            + upsert
        ),
        params,
    )
    session.execute(
        text(
            """
        INSERT INTO data_quality_metrics
            (metric_date, data_layer, total_records, valid_records, warning_records,
             failed_records, avg_field_completeness, avg_quality_score,
             avg_enrichment_confidence, field_completeness, provider_success_rates)
        SELECT :d, 'silver', count(*),
               count(*) FILTER (WHERE validation_status = 'valid'),
               count(*) FILTER (WHERE validation_status = 'warning'),
               count(*) FILTER (WHERE validation_status IN ('failed', 'needs_review')),
               round(avg(calculate_enrichment_completeness(s.*)) * 100, 2),
               round(avg(data_quality_score), 2),
               (SELECT round(avg(current_confidence), 2) FROM field_provenance),
               jsonb_build_object(
                   'bpm', round(avg((bpm IS NOT NULL)::int) * 100, 2),
                   'key', round(avg((key IS NOT NULL)::int) * 100, 2),
                   'genre', round(avg((coalesce(cardinality(genre), 0) > 0)::int) * 100, 2),
                   'isrc', round(avg((isrc IS NOT NULL)::int) * 100, 2),
                   'spotify_id', round(avg((spotify_id IS NOT NULL)::int) * 100, 2),
                   'release_date', round(avg((release_date IS NOT NULL)::int) * 100, 2)),
               (SELECT coalesce(jsonb_object_agg(provider_name, success_rate), '{}'::jsonb)
                  FROM enrichment_providers WHERE success_rate IS NOT NULL)
        FROM silver_enriched_tracks s"""
            + upsert
        ),
        params,
    )
    session.execute(
        text(
            """
        INSERT INTO data_quality_metrics (metric_date, data_layer, total_records, valid_records,
                                          avg_field_completeness, avg_quality_score)
        SELECT :d, 'gold', count(*), count(*),
               round(avg(enrichment_completeness) * 100, 2), round(avg(data_quality_score), 2)
        FROM gold_track_analytics"""
            + upsert
        ),
        params,
    )


def update_provider_health(session: Session, states: dict[str, str]) -> None:
    """Write breaker states (healthy/degraded/down) into the registry."""
    for provider, health in states.items():
        session.execute(
            text(
                "UPDATE enrichment_providers SET health_status = :h, last_health_check = now() "
                "WHERE provider_name = :p"
            ),
            {"h": health, "p": provider},
        )


def stale_gold(session: Session, older_than_s: int = 600, limit: int = 5000) -> list[str]:
    """Silver tracks that qualify for gold but whose gold row is missing or older than the
    silver row (a lost gold message): the sweeper sends them to gold again."""
    rows = session.execute(
        text("""
            SELECT s.id FROM silver_enriched_tracks s
            LEFT JOIN gold_track_analytics g ON g.silver_track_id = s.id
            WHERE s.validation_status IN ('valid', 'warning')
              AND jsonb_array_length(coalesce(s.validation_errors, '[]'::jsonb)) = 0
              AND s.updated_at < now() - make_interval(secs => :s)
              AND (g.id IS NULL OR g.last_analyzed_at < s.updated_at)
            ORDER BY s.updated_at LIMIT :n"""),
        {"s": older_than_s, "n": limit},
    )
    return [str(r[0]) for r in rows]


def find_stalled_work(
    session: Session,
    older_than_s: int = 600,
    *,
    busy_providers: Collection[str] = (),
    merges_busy: bool = False,
) -> tuple[Next, list[str]]:
    """Re-enqueue work whose message was lost: pending lookups and unmerged jobs older than the
    timeout, plus bronze tracks that never got a job. Returns (work to dispatch, bronze ids
    without a job, which the caller starts in a fresh run).

    ``busy_providers``: providers whose queue still holds messages, and ``merges_busy``: the
    merge queue does. Their work is not re-sent: a queue with messages waiting has not lost
    them, and what it holds will be consumed (the next sweep looks again)."""
    params: dict[str, Any] = {"s": older_than_s, "busy": list(busy_providers)}
    nxt = Next()
    # Replay runs' jobs are re-sent as replay chunks (``pipeline.recovery.stalled_replays``);
    # a lookup leased by a worker that is still asking it is left alone (issue 20).
    for job_id, provider in session.execute(
        text("""
            UPDATE enrichment_lookups l SET updated_at = now(), leased_until = NULL,
                   leased_by = NULL
            FROM enrichment_jobs j JOIN enrichment_pipeline_runs r ON r.id = j.run_id
            WHERE l.job_id = j.id AND r.run_type <> 'replay'
              AND l.status = 'pending'
              -- never leased and old enough; or leased and the lease ran out (its worker died,
              -- or its retry message was lost): either way the work is lost.
              AND ((l.leased_until IS NULL AND l.updated_at < now() - make_interval(secs => :s))
                   OR l.leased_until < now())
              AND l.provider <> ALL(CAST(:busy AS text[]))
            RETURNING l.job_id, l.provider"""),
        params,
    ):
        nxt.lookups.setdefault(provider, []).append(str(job_id))
    for (job_id,) in session.execute(
        text("""
            UPDATE enrichment_jobs j SET updated_at = now()
            FROM enrichment_pipeline_runs r
            WHERE r.id = j.run_id AND r.run_type <> 'replay' AND NOT :merges_busy
              AND j.status = 'merging' AND j.updated_at < now() - make_interval(secs => :s)
            RETURNING j.id"""),
        params | {"merges_busy": merges_busy},
    ):
        nxt.merges.append(str(job_id))
    # A job still enriching with no lookup pending was never advanced (its fan-in was lost
    # with a failed record step): advance it now.
    idle = [
        str(r[0])
        for r in session.execute(
            text("""
            SELECT j.id FROM enrichment_jobs j JOIN enrichment_pipeline_runs r ON r.id = j.run_id
            WHERE r.run_type <> 'replay' AND j.status = 'enriching'
              AND j.updated_at < now() - make_interval(secs => :s)
              AND NOT EXISTS (SELECT 1 FROM enrichment_lookups l
                              WHERE l.job_id = j.id AND l.status = 'pending')
            LIMIT 5000"""),
            params,
        )
    ]
    if idle:
        from pipeline.enrich import advance_many

        nxt.extend(advance_many(session, idle))
    # Runs whose jobs are all done but which were never closed (belt and braces for the
    # close-run step): close them now.
    from pipeline.runs import finish_run_if_done

    unclosed = session.execute(
        text("""
            SELECT r.id FROM enrichment_pipeline_runs r
            WHERE r.run_status = 'running' AND r.started_at < now() - make_interval(secs => :s)
              AND NOT EXISTS (SELECT 1 FROM enrichment_jobs j WHERE j.run_id = r.id
                              AND j.status IN ('enriching', 'merging'))"""),
        params,
    ).all()
    for (run_id,) in unclosed:
        finish_run_if_done(session, run_id)
    orphans = [
        str(r[0])
        for r in session.execute(
            text("""
            SELECT b.id FROM bronze_scraped_tracks b
            WHERE b.created_at < now() - make_interval(secs => :s)
              AND NOT EXISTS (SELECT 1 FROM enrichment_jobs j WHERE j.bronze_track_id = b.id)
            ORDER BY b.created_at LIMIT 5000"""),
            params,
        )
    ]
    return nxt, orphans


def resend_stuck_runs(session: Session, older_than_s: int = 6 * 3600) -> Next:
    """All open work of runs still ``running`` ``older_than_s`` after they started, whatever
    its age: pending lookups (unless leased), merging jobs, and enriching jobs with nothing
    pending (advanced now). The reaper's first step: a recoverable job is re-sent, not failed."""
    params = {"s": older_than_s}
    nxt = Next()
    stuck = """SELECT id FROM enrichment_pipeline_runs WHERE run_status = 'running'
               AND run_type <> 'replay' AND started_at < now() - make_interval(secs => :s)"""
    for job_id, provider in session.execute(
        text(f"""
            UPDATE enrichment_lookups l SET updated_at = now() FROM enrichment_jobs j
            WHERE l.job_id = j.id AND j.run_id IN ({stuck}) AND l.status = 'pending'
              AND (l.leased_until IS NULL OR l.leased_until < now())
            RETURNING l.job_id, l.provider"""),
        params,
    ):
        nxt.lookups.setdefault(provider, []).append(str(job_id))
    for (job_id,) in session.execute(
        text(f"""
            UPDATE enrichment_jobs SET updated_at = now()
            WHERE run_id IN ({stuck}) AND status = 'merging' RETURNING id"""),
        params,
    ):
        nxt.merges.append(str(job_id))
    idle = [
        str(r[0])
        for r in session.execute(
            text(f"""
            SELECT j.id FROM enrichment_jobs j WHERE j.run_id IN ({stuck})
              AND j.status = 'enriching'
              AND NOT EXISTS (SELECT 1 FROM enrichment_lookups l
                              WHERE l.job_id = j.id AND l.status = 'pending')"""),
            params,
        )
    ]
    if idle:
        from pipeline.enrich import advance_many

        nxt.extend(advance_many(session, idle))
    return nxt


def reap_runs(session: Session, older_than_s: int = 6 * 3600) -> list[str]:
    """Close runs still ``running`` long after they started: their open jobs are marked failed.

    The last resort (``tasks.maintenance.reap_stuck_runs`` calls it only past the give-up age,
    days after :func:`resend_stuck_runs` started re-sending the runs' work every reap)."""
    stuck = [
        str(r[0])
        for r in session.execute(
            text("""
        SELECT id FROM enrichment_pipeline_runs
        WHERE run_status = 'running' AND started_at < now() - make_interval(secs => :s)"""),
            {"s": older_than_s},
        )
    ]
    from pipeline.runs import finish_run_if_done

    for run_id in stuck:
        session.execute(
            text("""
            UPDATE enrichment_jobs SET status = 'failed', updated_at = now(),
                   last_error = 'reaped: run exceeded its time limit'
            WHERE run_id = :r AND status IN ('enriching', 'merging')"""),
            {"r": run_id},
        )
        if not finish_run_if_done(session, run_id):
            session.execute(text("SELECT complete_pipeline_run(:r, 'failed')"), {"r": run_id})
        session.execute(
            text("""
            UPDATE enrichment_pipeline_runs
            SET critical_errors = array_append(critical_errors, 'reaped: stuck in running')
            WHERE id = :r"""),
            {"r": run_id},
        )
    return stuck
