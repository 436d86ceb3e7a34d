"""``songnodes replay | trace | report``: re-run enrichment, explain a value, operations report."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from pipeline.cli.common import console, follow, make_progress, prepare_database

__all__ = ["register", "replay", "report", "trace"]

ROW_BATCH = 1000  # bronze ids per queue row: one replay run each


def _select_bronze(
    session: Any,
    bronze_ids: list[str],
    source: str | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
    silver_ids: list[str],
) -> list[str]:
    from sqlalchemy import text

    from pipeline.merge import bronze_ids_of

    ids = set(bronze_ids)
    for sid in silver_ids:
        built_from = bronze_ids_of(session, sid)
        if built_from is None:
            console.print(f"[red]no silver track {sid}[/red]")
            raise typer.Exit(2)
        ids.update(built_from)
    if source or since or until:
        where: list[str] = []
        params: dict[str, Any] = {}
        if source:
            where.append("source = :source")
            params["source"] = source
        if since:
            where.append("scraped_at >= :since")
            params["since"] = since
        if until:
            where.append("scraped_at < :until")
            params["until"] = until
        ids.update(
            str(r[0])
            for r in session.execute(
                text(f"SELECT id FROM bronze_scraped_tracks WHERE {' AND '.join(where)}"), params
            )
        )
    return sorted(ids)


def _progress(queue_ids: list[str]) -> tuple[int, int, bool]:
    from sqlalchemy import text

    from db.engine import session_scope

    with session_scope() as session:
        row = session.execute(
            text(
                """
                SELECT sum(cardinality(q.bronze_ids)) AS total,
                       sum(CASE WHEN q.status IN ('completed', 'failed', 'cancelled')
                                THEN cardinality(q.bronze_ids)
                                ELSE (SELECT count(*) FROM enrichment_jobs j
                                      WHERE j.run_id = q.assigned_run_id
                                        AND j.status IN ('merged', 'failed')) END) AS done,
                       bool_and(q.status IN ('completed', 'failed', 'cancelled')) AS finished
                FROM pipeline_replay_queue q WHERE q.id = ANY(CAST(:ids AS uuid[]))
                """
            ),
            {"ids": queue_ids},
        ).one()
    return int(row.done or 0), int(row.total or 0), bool(row.finished)


def _print_rows(queue_ids: list[str]) -> bool:
    from sqlalchemy import text

    from db.engine import session_scope

    with session_scope() as session:
        rows = session.execute(
            text(
                """
                SELECT q.id, q.status, q.assigned_run_id, q.error_message,
                       r.error_summary -> 'replay' AS summary
                FROM pipeline_replay_queue q
                LEFT JOIN enrichment_pipeline_runs r ON r.id = q.assigned_run_id
                WHERE q.id = ANY(CAST(:ids AS uuid[])) ORDER BY q.created_at
                """
            ),
            {"ids": queue_ids},
        ).all()
    table = Table("request", "status", "replay run", "result", title="pipeline_replay_queue")
    for r in rows:
        s = r.summary or {}
        result = r.error_message or (
            f"{s.get('succeeded', 0)}/{s.get('records', 0)} records, "
            f"{s.get('fields_changed', 0)} field values changed, {s.get('api_calls', 0)} API calls"
            if s
            else ""
        )
        table.add_row(str(r.id), r.status, str(r.assigned_run_id or ""), result)
    console.print(table)
    return all(r.status == "completed" for r in rows)


def replay(
    bronze_id: list[str] = typer.Option([], "--bronze-id", help="Bronze track id (repeatable)."),
    source: str | None = typer.Option(None, help="Every bronze track from this source."),
    since: dt.datetime | None = typer.Option(None, help="Scraped at or after (ISO date/time)."),
    until: dt.datetime | None = typer.Option(None, help="Scraped before (ISO date/time)."),
    silver_id: list[str] = typer.Option([], "--silver-id", help="Bronze rows of a silver track."),
    field: list[str] = typer.Option([], "--field", help="Replay only this field (repeatable)."),
    historical_run: str | None = typer.Option(
        None, help="Resolve with this run's configuration snapshot (time travel)."
    ),
    force: bool = typer.Option(False, help="Ask the providers again instead of stored responses."),
    gold_only: bool = typer.Option(False, help="Only re-aggregate gold for these tracks."),
    reason: str | None = typer.Option(None, help="Why (kept on the queue row)."),
    requested_by: str = typer.Option(
        os.environ.get("USER", "unknown"), help="Who asks (default $USER)."
    ),
    priority: int = typer.Option(5, min=1, max=10, help="Higher is taken first."),
    wait: bool = typer.Option(True, help="Follow the replay until it is done."),
    timeout: float = typer.Option(600, help="Seconds to wait."),
) -> None:
    """Queue a replay (pipeline_replay_queue) and follow it: stored responses by default."""
    from sqlalchemy import text

    from db.engine import session_scope
    from pipeline.runtime import in_process, worker_context

    prepare_database(migrate=False)
    with session_scope() as session:
        ids = _select_bronze(session, bronze_id, source, since, until, silver_id)
        if not ids:
            console.print(
                "[red]nothing selected: give --bronze-id, --source, --since/--until "
                "or --silver-id[/red]"
            )
            raise typer.Exit(2)
        queue_ids = [
            str(
                session.execute(
                    text(
                        """
                        INSERT INTO pipeline_replay_queue
                            (bronze_ids, target_layer, fields_to_replay, force_re_enrichment,
                             use_historical_config, config_snapshot_run_id, requested_by, reason,
                             priority)
                        VALUES (CAST(:ids AS text[]), :layer, :fields, :force, :hist, :run,
                                :by, :reason, :prio)
                        RETURNING id
                        """
                    ),
                    {
                        "ids": ids[start : start + ROW_BATCH],
                        "layer": "gold" if gold_only else "silver",
                        "fields": field or None,
                        "force": force,
                        "hist": historical_run is not None,
                        "run": historical_run,
                        "by": requested_by,
                        "reason": reason,
                        "prio": priority,
                    },
                ).scalar_one()
            )
            for start in range(0, len(ids), ROW_BATCH)
        ]
    console.print(f"queued {len(ids)} bronze tracks in {len(queue_ids)} replay request(s)")
    if not wait and not in_process():
        from tasks.replay import drain_replay_queue

        drain_replay_queue.delay()  # picked up now rather than at the next beat tick
        return
    with worker_context(), make_progress() as progress:
        from tasks.replay import drain_replay_queue

        drain_replay_queue.delay()

        def read() -> tuple[int, int, bool]:
            done, total, finished = _progress(queue_ids)
            if not finished and in_process():
                drain_replay_queue.delay()  # beat does this every 30 s with a broker
            return done, total, finished

        ok = follow(progress, "replay", read, timeout)
    ok = _print_rows(queue_ids) and ok
    if not ok:
        raise typer.Exit(1)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if hasattr(value, "__dataclass_fields__"):
        return {k: _jsonable(getattr(value, k)) for k in value.__dataclass_fields__}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def trace(
    track: str | None = typer.Argument(None, help='"<artist> - <title>"'),
    field: str = typer.Option("bpm", help="The field to explain."),
    silver_id: str | None = typer.Option(None, help="Silver track id instead of a name."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Why does this track's FIELD hold its value? Sources, providers, thresholds, replays."""
    from db.engine import session_scope
    from pipeline.trace import find_silver, trace_field

    prepare_database(migrate=False)
    with session_scope() as session:
        ids = [silver_id] if silver_id else find_silver(session, track or "")
        if not ids:
            console.print(f"[red]no silver track matches {track!r}[/red]")
            raise typer.Exit(1)
        traces = [trace_field(session, i, field) for i in ids[:5]]
    if as_json:
        typer.echo(json.dumps(_jsonable(traces), indent=2, default=str))
        return
    for t in traces:
        _render_trace(t)


def _render_trace(t: Any) -> None:
    from rich.panel import Panel

    console.rule(f"[bold]{t.artist_name} - {t.track_title}[/bold]  ({t.silver_id})")
    conf = "" if t.current_confidence is None else f" at {t.current_confidence:.2f}"
    console.print(
        Panel(
            f"{t.field} = [bold]{t.current_value}[/bold] from {t.current_provider}{conf}",
            title="current value",
        )
    )
    src = Table("bronze id", "source", "url", "scraped at", title="bronze sources")
    for s in t.sources:
        src.add_row(
            s.bronze_id + (" (primary)" if s.primary else ""),
            s.source,
            s.source_url,
            f"{s.scraped_at:%Y-%m-%d %H:%M}",
        )
    console.print(src)
    for d in t.decisions:
        title = (
            f"{d.run_type} run {d.run_id} (config snapshot {d.snapshot_at:%Y-%m-%d %H:%M:%S}) "
            f"-> {d.value} by {d.winner}" + ("  [yellow]CHANGED[/yellow]" if d.changed else "")
        )
        table = Table("prio", "provider", "answer", "conf", "threshold", "outcome", title=title)
        for a in d.answers:
            met = (
                a.success
                and a.confidence is not None
                and a.threshold is not None
                and a.confidence >= a.threshold
            )
            outcome = (
                ("[green]won[/green]" if a.provider == d.winner else "met" if met else "below")
                if a.success
                else f"[red]{a.error or 'failed'}[/red]"
            )
            table.add_row(
                str(a.priority or "-"),
                a.provider,
                json.dumps(a.value, default=str),
                "" if a.confidence is None else f"{a.confidence:.2f}",
                "" if a.threshold is None else f"{a.threshold:.2f}",
                outcome,
            )
        console.print(table)
        console.print(f"  why: {d.rules.get('reason', '')}")
        if d.rules.get("reconciled"):
            console.print(f"  note: {d.rules['reconciled']}")


def report(
    days: int = typer.Option(7, help="Window in days."),
    plot: Path | None = typer.Option(None, help="Write quality/provider trends to this PNG."),
    whatif_budget: float = typer.Option(
        30.0, help="--plot: seconds of what-if search for the cost/fill panel (all fields)."
    ),
) -> None:
    """Runs, provider success/latency/cost, field completeness and the quality trend."""
    from db.engine import session_scope
    from pipeline.report import build_report, plot_report

    prepare_database(migrate=False)
    with session_scope() as session:
        rep = build_report(session, days)
        whatif = None
        if plot:  # issue #19: cost against fill per field, today's order and the suggested
            from pipeline.report import COMPLETENESS_FIELDS
            from pipeline.whatif.plot import whatif_points

            whatif = whatif_points(session, days, COMPLETENESS_FIELDS, budget_s=whatif_budget)
            session.rollback()  # simulations write nothing; make sure of it
    runs = Table(
        "type", "status", "runs", "records", "failed", "API calls", "cost $", "avg s",
        title=f"runs (last {days} days)",
    )  # fmt: skip
    for r in rep.runs:
        runs.add_row(
            r["run_type"],
            r["run_status"],
            str(r["runs"]),
            str(r["records"] or 0),
            str(r["failed"] or 0),
            str(r["api_calls"] or 0),
            f"{float(r['cost_usd'] or 0):.4f}",
            str(r["avg_seconds"] or ""),
        )
    console.print(runs)
    prov = Table(
        "provider", "lookups", "success", "errors", "avg ms", "p95 ms", "API calls", "cost $",
        title="providers",
    )  # fmt: skip
    for p in rep.providers:
        prov.add_row(
            p["provider"],
            str(p["lookups"]),
            f"{float(p['success_rate'] or 0):.0%}",
            str(p["errors"]),
            str(p["avg_latency_ms"] or ""),
            "" if p["p95_latency_ms"] is None else f"{float(p['p95_latency_ms']):.0f}",
            str(p["api_calls"] or 0),
            f"{float(p['cost_usd'] or 0):.4f}",
        )
    console.print(prov)
    comp = Table("field", "silver completeness", title="field completeness")
    for k, v in rep.completeness.items():
        comp.add_row(k, f"{v:.1f}%")
    console.print(comp)
    trend = Table("day", "avg quality", "completeness %", "records", "valid", title="quality trend")
    for q in rep.quality_trend:
        trend.add_row(
            str(q["day"]),
            str(q["avg_quality_score"] or ""),
            str(q["avg_field_completeness"] or ""),
            str(q["total_records"] or 0),
            str(q["valid_records"] or 0),
        )
    console.print(trend)
    if plot:
        plot_report(rep, plot, whatif=whatif)
        console.print(f"plot written to {plot}")


def register(app: typer.Typer) -> None:
    app.command()(replay)
    app.command()(trace)
    app.command()(report)
