"""``songnodes waterfall simulate | suggest``: change the waterfall with evidence (issue #19).

Both read stored provider answers only (no provider is called, nothing is written to silver);
``suggest --apply`` writes one ``metadata_enrichment_config`` row, which the next run snapshots.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from pipeline.cli.common import console, prepare_database

__all__ = ["app"]

app = typer.Typer(help="What-if simulation of waterfall changes over stored answers.")


def _selection(
    runs: int | None,
    run_ids: list[str],
    since: dt.datetime | None,
    until: dt.datetime | None,
    source: str | None,
    setlist: str | None,
) -> Any:
    from pipeline.whatif import Selection

    if runs is None and not (run_ids or since or until):
        # One run is one ingest message (a few hundred tracks): a week of runs by default.
        since = dt.datetime.now(dt.UTC) - dt.timedelta(days=7)
    return Selection(runs, tuple(run_ids), since, until, source, setlist)


_RUNS = typer.Option(
    None, "--runs", help="The last N runs that asked providers (default: the last 7 days)."
)
_RUN = typer.Option([], "--run", help="A run id (repeatable).")
_SINCE = typer.Option(None, help="Runs started at or after (ISO time).")
_UNTIL = typer.Option(None, help="Runs started before (ISO time).")
_SOURCE = typer.Option(None, help="Only bronze rows of this source.")
_SETLIST = typer.Option(None, help="Only tracks of this setlist (bronze playlist id).")


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.1%}"


def _print_simulation(sim: Any, fields: list[str] | None) -> None:
    table = Table(
        "field", "mode", "order", "fill", "was", "unknown", "changed", "calls", "saved",
        "cost $", "saved $", "agreement", title=f"simulation over {sim.tracks} tracks",
    )  # fmt: skip
    for name, ff in sorted(sim.fields.items()):
        if fields and name not in fields:
            continue
        table.add_row(
            name, ff.mode, ",".join(ff.order), _fmt(ff.fill_rate), _fmt(ff.history_fill_rate),
            str(ff.unknown), str(ff.changed), f"{ff.calls:.1f}",
            f"{ff.history_calls - ff.calls:.1f}", f"{ff.cost_usd:.4f}",
            f"{ff.history_cost_usd - ff.cost_usd:.4f}", _fmt(ff.agreement),
        )  # fmt: skip
    console.print(table)
    console.print(
        f"calls {sim.calls} (history {sim.history_calls}, saved {sim.history_calls - sim.calls}),"
        f" cost ${float(sim.cost_usd):.4f}"
        f" (saved ${float(sim.history_cost_usd - sim.cost_usd):.4f});"
        f" lookups {sim.lookups}, re-derived from stored exchanges {sim.reasked_lookups},"
        f" unknown {sim.unknown_lookups} on {sim.tracks_with_unknown} tracks;"
        f" {sim.tracks_per_s:.0f} tracks/s"
    )
    for why in sim.unknown_examples:
        console.print(f"  unknown: {why}")
    for name, ff in sorted(sim.fields.items()):
        if (fields and name not in fields) or not ff.examples:
            continue
        console.print(f"[bold]{name}[/bold]: {ff.changed} values would change, e.g.")
        for ex in ff.examples:
            console.print(
                f"  {ex['track']}: {json.dumps(ex['old'])} ({ex['old_provider'] or '-'}) -> "
                f"{json.dumps(ex['new'])} ({ex['new_provider'] or '-'}): {ex['reason']}"
            )


@app.command()
def simulate(
    config: Path | None = typer.Option(
        None, help="JSON/CSV rows shaped like metadata_enrichment_config (replace those fields)."
    ),
    field: str | None = typer.Option(None, help="Field the options below change."),
    order: str | None = typer.Option(None, help="Providers in priority order, comma-separated."),
    thresholds: str | None = typer.Option(None, help="Slot thresholds, comma-separated."),
    mode: str | None = typer.Option(None, help="sequential | parallel."),
    min_acceptable: float | None = typer.Option(None, help="min_acceptable_confidence."),
    runs: int | None = _RUNS,
    run: list[str] = _RUN,
    since: dt.datetime | None = _SINCE,
    until: dt.datetime | None = _UNTIL,
    source: str | None = _SOURCE,
    setlist: str | None = _SETLIST,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Simulate a proposed configuration over stored answers: fill, changes, calls, cost."""
    from db.engine import session_scope
    from pipeline.whatif import ConfigError, edit_field, load_history, load_rows, today
    from pipeline.whatif import simulate as run_simulation

    prepare_database(migrate=False)
    with session_scope() as session:
        try:
            proposal = today(session)
            if config is not None:
                proposal = load_rows(proposal, config)
            if field is not None:
                proposal = edit_field(
                    proposal,
                    field,
                    order=order.split(",") if order else None,
                    thresholds=[float(t) for t in thresholds.split(",")] if thresholds else None,
                    mode=mode,
                    min_acceptable=min_acceptable,
                )
            elif order or thresholds or mode or min_acceptable is not None:
                raise ConfigError("--order/--thresholds/--mode/--min-acceptable need --field")
        except (ConfigError, ValueError) as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from exc
        tracks = load_history(session, _selection(runs, run, since, until, source, setlist))
        if not tracks:
            console.print("[red]the selection holds no run that asked providers[/red]")
            raise typer.Exit(1)
        sim = run_simulation(proposal.plan(), proposal.prices(), tracks, session=session)
        session.rollback()  # read-only by construction; make sure of it
    if as_json:
        typer.echo(json.dumps(sim.as_dict(), default=str))
    else:
        _print_simulation(sim, [field] if field else None)


@app.command()
def suggest(
    field: str = typer.Option(..., "--field", help="The field whose waterfall to search."),
    top: int = typer.Option(3, help="How many suggestions to show."),
    budget: float = typer.Option(120.0, help="Search time budget in seconds."),
    apply: bool = typer.Option(False, "--apply", help="Write the best suggestion."),
    runs: int | None = _RUNS,
    run: list[str] = _RUN,
    since: dt.datetime | None = _SINCE,
    until: dt.datetime | None = _UNTIL,
    source: str | None = _SOURCE,
    setlist: str | None = _SETLIST,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Search orders/thresholds/modes of one field that keep fill and agreement and cut calls."""
    from sqlalchemy import text

    from db.engine import session_scope
    from pipeline.whatif import load_history, today
    from pipeline.whatif import suggest as search
    from pipeline.whatif.rollup import field_rollup

    prepare_database(migrate=False)
    with session_scope() as session:
        base = today(session)
        if field not in base.rows:
            console.print(f"[red]unknown field {field!r}; the waterfall has {sorted(base.rows)}")
            raise typer.Exit(2)
        tracks = load_history(session, _selection(runs, run, since, until, source, setlist))
        if not tracks:
            console.print("[red]the selection holds no run that asked providers[/red]")
            raise typer.Exit(1)
        found = search(session, base, tracks, field, top=top, budget_s=budget)
        rollup = field_rollup(session, field)
        session.rollback()
        if apply and found.best:
            session.execute(text(found.best[0].sql))
    out = found.as_dict() | {"applied": bool(apply and found.best), "rollup_30d": rollup}
    if as_json:
        typer.echo(json.dumps(out, default=str))
        return
    t = out["today"]
    console.print(
        f"{field} today: {','.join(t['order'])} {t['thresholds']} {t['mode']}: fill "
        f"{_fmt(t['fill_rate'])}, agreement {_fmt(t['agreement'])}, calls {t['calls']}, "
        f"cost ${t['cost_usd']:.4f} ({found.evaluated} candidates in {found.seconds:.1f} s, "
        f"{found.today.tracks} tracks)"
    )
    if rollup:
        table = Table("provider", "requests", "fill", "agrees w/ chosen", "chosen", "avg ms",
                      "cost $", title=f"{field}: nightly rollup, last 30 days")  # fmt: skip
        for r in rollup:
            table.add_row(
                r["provider"], f"{r['requests']:.0f}", _fmt(r["fill_rate"]), _fmt(r["agreement"]),
                f"{r['chosen']:.0f}", f"{r['avg_latency_ms'] or 0:.0f}", f"{r['cost_usd']:.4f}",
            )  # fmt: skip
        console.print(table)
    if not found.best:
        console.print("no configuration keeps fill rate and agreement and makes fewer calls")
        return
    for i, s in enumerate(out["suggestions"], 1):
        console.print(
            f"{i}. {','.join(s['order'])} {s['thresholds']} {s['mode']}: fill "
            f"{_fmt(s['fill_rate'])}, agreement {_fmt(s['agreement'])}, calls {s['calls']} "
            f"(saves {t['calls'] - s['calls']}), cost ${s['cost_usd']:.4f}"
        )
        console.print(f"   {s['sql']}")
    if out["applied"]:
        console.print("[green]applied suggestion 1[/green]; the next run snapshots it. Undo:")
    else:
        console.print("to undo after applying:")
    console.print(f"   {found.undo_sql}")
    console.print(
        "   (or replay with --historical-run <an earlier run> to use that run's snapshot)"
    )
