"""``songnodes alerts`` (evaluate the alert rules; cron-friendly exit code) and
``songnodes metrics`` (the Prometheus endpoint)."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from pipeline.cli.common import console, prepare_database

__all__ = ["alerts", "metrics", "register"]


def alerts(
    as_json: bool = typer.Option(False, "--json", help="Print what fires as JSON."),
    history: int = typer.Option(0, help="Also list the last N firings and resolutions."),
    notify_webhook: bool = typer.Option(
        True, "--notify/--no-notify", help="Post changes to SONGNODES_ALERT_WEBHOOK_URL if set."
    ),
) -> None:
    """Evaluate the alert rules now, record firings/resolutions, list what fires.

    Exits 1 while anything fires (0 otherwise), so cron or a CI check works without beat."""
    from db.engine import session_scope
    from pipeline import alerts as alerting
    from pipeline.alert_webhook import notify
    from pipeline.figures import redis_from_env

    prepare_database(migrate=False)
    with session_scope() as session:
        result = alerting.evaluate(session, redis_from_env())
        past = alerting.history(session, history) if history else []
    if notify_webhook:
        notify(result.firing, result.changes)
    if as_json:
        print(
            json.dumps(
                {
                    "firing": [
                        {
                            "condition": a.condition,
                            "subject": a.subject,
                            "value": a.value,
                            "threshold": a.threshold,
                            "since": a.since.isoformat(),
                        }
                        for a in result.firing
                    ],
                    "changes": alerting.describe(result.changes),
                }
            )
        )
    else:
        for line in alerting.describe(result.changes):
            console.print(line, markup=False, highlight=False)  # "[subject]" is not markup
        table = Table("condition", "subject", "value", "threshold", "since", title="firing")
        for a in result.firing:
            table.add_row(
                a.condition, a.subject, f"{a.value:g}", f"{a.threshold:g}", f"{a.since:%F %T}"
            )
        console.print(table if result.firing else "nothing fires")
        if past:
            hist = Table("at", "event", "condition", "subject", "value", "threshold",
                         title="history")  # fmt: skip
            for h in past:
                value = "n/a" if h["value"] is None else f"{float(h['value']):g}"
                hist.add_row(
                    f"{h['occurred_at']:%F %T}", h["event"], h["condition"], h["subject"],
                    value, f"{float(h['threshold']):g}",
                )  # fmt: skip
            console.print(hist)
    raise typer.Exit(1 if result.firing else 0)


def metrics(
    port: int = typer.Option(9464, help="Port of the /metrics endpoint."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0 in a container)."),
) -> None:
    """Serve Prometheus metrics computed from PostgreSQL and Redis at each scrape."""
    from pipeline.metrics import serve

    prepare_database(migrate=False)
    console.print(f"metrics on http://{host}:{port}/metrics")
    serve(port, host)


def register(app: typer.Typer) -> None:
    app.command()(alerts)
    app.command()(metrics)
