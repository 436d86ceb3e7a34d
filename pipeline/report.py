"""Operations report: runs, providers, field completeness and quality trend (queries + a plot)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from pipeline import figures
from pipeline.figures import COMPLETENESS_FIELDS, REPORT_DAYS

__all__ = ["COMPLETENESS_FIELDS", "Report", "build_report", "plot_report"]


@dataclass
class Report:
    days: int
    since: dt.datetime
    runs: list[dict[str, Any]] = field(default_factory=list)  # per run_type + status
    providers: list[dict[str, Any]] = field(default_factory=list)  # lookups in the window
    provider_history: list[dict[str, Any]] = field(default_factory=list)  # per day/provider
    completeness: dict[str, float] = field(default_factory=dict)  # % of silver tracks
    quality_trend: list[dict[str, Any]] = field(default_factory=list)  # per day


def _rows(session: Session, sql: str, **params: Any) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in session.execute(text(sql), params)]


def build_report(session: Session, days: int = REPORT_DAYS) -> Report:
    """Everything ``songnodes report`` shows, for the last ``days`` days."""
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    rep = Report(days, since)
    rep.runs = _rows(
        session,
        """SELECT run_type, run_status, count(*) AS runs, sum(records_processed) AS records,
                  sum(records_failed) AS failed, sum(total_api_calls) AS api_calls,
                  coalesce(sum(total_api_cost_usd), 0) AS cost_usd,
                  round(avg(duration_seconds), 1) AS avg_seconds
           FROM enrichment_pipeline_runs WHERE started_at >= :since
           GROUP BY run_type, run_status ORDER BY run_type, run_status""",
        since=since,
    )
    rep.providers = _rows(
        session,
        """SELECT l.provider, count(*) AS lookups,
                  count(*) FILTER (WHERE l.status = 'found') AS found,
                  round(avg((l.status = 'found')::int), 3) AS success_rate,
                  count(*) FILTER (WHERE l.status IN ('failed', 'unavailable')) AS errors,
                  round(avg(l.latency_ms)) AS avg_latency_ms,
                  percentile_cont(0.95) WITHIN GROUP (ORDER BY l.latency_ms) AS p95_latency_ms,
                  sum(l.api_calls) AS api_calls, sum(l.cost_usd) AS cost_usd
           FROM enrichment_lookups l WHERE l.updated_at >= :since AND l.status <> 'pending'
           GROUP BY l.provider ORDER BY l.provider""",
        since=since,
    )
    # Success rate and fill rates come from pipeline.figures, as the metrics (and so the
    # Grafana dashboard) do: one definition of each number.
    success = figures.provider_success(session, since)
    for p in rep.providers:
        p["success_rate"] = success[p["provider"]].rate
    rep.provider_history = _rows(
        session,
        """SELECT period_start::date AS day, provider_name AS provider,
                  sum(request_count) AS requests, sum(success_count) AS successes,
                  round(sum(success_count)::numeric / nullif(sum(request_count), 0), 3)
                      AS success_rate,
                  round(avg(avg_response_time_ms)) AS avg_latency_ms
           FROM provider_performance_history WHERE period_start >= :since
           GROUP BY 1, 2 ORDER BY 1, 2""",
        since=since,
    )
    if not rep.provider_history:  # nightly rollup not run yet: derive from the lookups
        rep.provider_history = _rows(
            session,
            """SELECT updated_at::date AS day, provider, count(*) AS requests,
                      count(*) FILTER (WHERE status = 'found') AS successes,
                      round(avg((status = 'found')::int), 3) AS success_rate,
                      round(avg(latency_ms)) AS avg_latency_ms
               FROM enrichment_lookups WHERE updated_at >= :since AND status <> 'pending'
               GROUP BY 1, 2 ORDER BY 1, 2""",
            since=since,
        )
    rep.completeness = figures.field_fill_rates(session)
    rep.quality_trend = _rows(
        session,
        """SELECT metric_date AS day, avg_quality_score, avg_field_completeness,
                  avg_enrichment_confidence, total_records, valid_records, failed_records
           FROM data_quality_metrics
           WHERE metric_date >= CAST(:since AS date) AND metric_hour IS NULL
             AND data_layer = 'silver'
           ORDER BY metric_date""",
        since=since,
    )
    if not rep.quality_trend:  # daily metrics not computed yet: derive from silver
        rep.quality_trend = _rows(
            session,
            """SELECT enriched_at::date AS day, round(avg(data_quality_score), 2)
                          AS avg_quality_score, NULL AS avg_field_completeness,
                      NULL AS avg_enrichment_confidence, count(*) AS total_records,
                      count(*) FILTER (WHERE validation_status = 'valid') AS valid_records,
                      NULL AS failed_records
               FROM silver_enriched_tracks WHERE enriched_at >= :since
               GROUP BY 1 ORDER BY 1""",
            since=since,
        )
    return rep


def plot_report(rep: Report, path: Path, whatif: list[Any] | None = None) -> dict[str, Any]:
    """Quality trend, per-provider success over time, field fill rates and the window's provider
    success, as a PNG (matplotlib, Agg). Returns the figures drawn by the two middle panels,
    which the Grafana dashboard shows too (same definitions: pipeline.figures). With ``whatif``
    (``pipeline.whatif.plot.whatif_points``) a last panel: cost against fill rate per field,
    today's waterfall and the suggested one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = 3 if whatif is not None else 2
    fig = plt.figure(figsize=(14, 4.5 * rows))
    grid = fig.add_gridspec(rows, 2)
    ax1, ax2 = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])
    ax3, ax4 = fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1])
    if whatif is not None:  # issue #19: one wide panel under the others
        from pipeline.whatif.plot import plot_whatif

        plot_whatif(fig.add_subplot(grid[2, :]), whatif)
    days = [r["day"] for r in rep.quality_trend]
    ax1.plot(
        days,
        [float(r["avg_quality_score"] or 0) for r in rep.quality_trend],
        marker="o",
        label="avg quality score",
    )
    ax1.set_ylim(0, 1.05)
    ax1.set_title(f"Silver quality (last {rep.days} days)")
    ax1.legend(loc="lower left")
    by_provider: dict[str, list[tuple[Any, float]]] = {}
    for r in rep.provider_history:
        by_provider.setdefault(r["provider"], []).append((r["day"], float(r["success_rate"] or 0)))
    for provider, points in sorted(by_provider.items()):
        ax2.plot([p[0] for p in points], [p[1] for p in points], marker=".", label=provider)
    ax2.set_ylim(0, 1.05)
    ax2.set_title("Provider success rate per day")
    if by_provider:
        ax2.legend(loc="lower left", fontsize="small", ncol=3)
    for label in ax1.get_xticklabels() + ax2.get_xticklabels():
        label.set_rotation(30)
    completeness = dict(rep.completeness)
    ax3.bar(list(completeness), list(completeness.values()), color="tab:green")
    ax3.set_ylim(0, 105)
    ax3.set_title("Field fill rate (%)")
    success = {p["provider"]: float(p["success_rate"]) for p in rep.providers}
    ax4.bar(list(success), list(success.values()), color="tab:blue")
    ax4.set_ylim(0, 1.05)
    ax4.set_title(f"Provider success rate ({rep.days} days)")
    ax4.tick_params(axis="x", labelrotation=30)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return {"completeness": completeness, "provider_success": success}
