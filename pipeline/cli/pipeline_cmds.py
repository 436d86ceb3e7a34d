"""``songnodes ingest | demo | sandbox | providers | quarantine``."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from pipeline.cli.common import console, follow, make_progress, prepare_database
from pipeline.errors import PipelineError

# _lines: bench/intake.py reads files exactly as the CLI does.
__all__ = ["_lines", "register", "run_ingest"]

BATCH = 200


def _lines(path: Path) -> list[bytes]:
    """The file's lines: LF-separated (a CR before the LF is dropped, CRLF files are fine).

    Bytes, not text: an invalid UTF-8 line must still reach quarantine byte for byte. Not
    ``splitlines()``: it also splits at a lone CR (and, on text, at U+2028/U+2029, form feeds...),
    which are data inside a line (a raw CR between JSON tokens is valid JSON whitespace)."""
    lines = path.read_bytes().split(b"\n")
    return [line[:-1] if line.endswith(b"\r") else line for line in lines if line.strip()]


class BatchFailed(PipelineError):
    """A batch of this ingest was quarantined whole (its run is ``failed``)."""


def _tag_progress(tag: str) -> tuple[int, int, bool]:
    from db.engine import session_scope
    from pipeline.progress import progress_for_tag

    with session_scope() as session:
        p = progress_for_tag(session, tag)
    return p.jobs_done, p.jobs, p.finished


def _send(messages: list[Any], tag: str, expected_runs: list[int]) -> None:
    from tasks.ingest import ingest_batch

    ingest_batch.apply_async((messages, tag, "cli"))
    expected_runs[0] += 1


def _runs_created(tag: str) -> int:
    """Runs the batches of ``tag`` opened so far; raises :class:`BatchFailed` as soon as one
    batch was quarantined whole, so ``--wait`` reports it at once instead of waiting it out."""
    from sqlalchemy import text

    from db.engine import session_scope

    with session_scope() as session:
        row = session.execute(
            text(
                "SELECT count(*) AS n, array_remove(array_agg(critical_errors[1])"
                " FILTER (WHERE run_status = 'failed'), NULL) AS failed"
                " FROM enrichment_pipeline_runs WHERE triggered_by = :t"
            ),
            {"t": tag},
        ).one()
    if row.failed:
        raise BatchFailed("; ".join(row.failed[:3]))
    return int(row.n)


#: With ``--wait``: when no batch has reached PostgreSQL for this long and some are missing, the
#: broker lost them (a restart without persistence): send every batch again (issue 20). Free:
#: bronze is idempotent, a copy already ingested only opens an empty run.
RESEND_AFTER_S = float(os.environ.get("SONGNODES_INGEST_RESEND_S", "60"))


class _Resender:
    """``follow`` reader for the intake phase that re-sends lost batches.

    Each batch opens one run under the tag. Before any re-send, done = one run per batch.
    After a re-send of all N batches, done = N more runs than there were at the re-send (a
    batch whose original and copy were both lost stalls again and is re-sent again)."""

    def __init__(self, tag: str, batches: list[list[Any]], sent: list[int]) -> None:
        self.tag, self.batches, self.sent = tag, batches, sent
        self.base = 0  # runs that existed at the last re-send (0: none yet)
        self.last, self.since = -1, time.monotonic()

    def read(self) -> tuple[int, int, bool]:
        runs = _runs_created(self.tag)
        need = self.base + len(self.batches)
        if runs != self.last:
            self.last, self.since = runs, time.monotonic()
        elif runs < need and time.monotonic() - self.since > RESEND_AFTER_S:
            console.print(
                f"[yellow]{need - runs} batch(es) never reached PostgreSQL in "
                f"{RESEND_AFTER_S:.0f} s: the broker lost them; sending every batch again[/yellow]"
            )
            self.base = runs
            for batch in self.batches:
                _send(batch, self.tag, self.sent)
            self.since = time.monotonic()
            need = self.base + len(self.batches)
        return min(runs, need), need, runs >= need


def run_ingest(messages: list[Any], tag: str, wait: bool, timeout_s: float) -> bool:
    """Enqueue messages in batches with a progress bar; optionally follow them to silver/gold."""
    from pipeline.ingest import encode_line
    from pipeline.runtime import in_process, worker_context

    wait = wait or in_process()
    sent = [0]
    batches: list[list[Any]] = []
    with worker_context(), make_progress() as progress:
        bar = progress.add_task("enqueue", total=len(messages))
        for start in range(0, len(messages), BATCH):
            batch = [
                encode_line(m) if isinstance(m, bytes) else m
                for m in messages[start : start + BATCH]
            ]
            _send(batch, tag, sent)
            batches.append(batch)
            progress.advance(bar, len(batch))
        if not wait:
            return True
        ok = follow(progress, "bronze -> silver", _Resender(tag, batches, sent).read, timeout_s)
        ok = ok and follow(progress, "enrich + merge", lambda: _tag_progress(tag), timeout_s)
        if ok:
            _settle_gold()
        return ok


def _settle_gold(quiet_s: float = 1.5, timeout_s: float = 60) -> None:
    """Let in-flight gold upserts finish (no change for ``quiet_s`` and no artist aggregate or
    track appearance still owed: those are paid debounced, migrations 019 and 023), then
    refresh the views."""
    from sqlalchemy import text

    from db.engine import session_scope
    from pipeline.gold import refresh_views

    last: tuple[Any, ...] | None = None
    stable_since = time.monotonic()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with session_scope() as session:
            now = tuple(
                session.execute(
                    text(
                        "SELECT (SELECT count(*) FROM gold_track_analytics), "
                        "(SELECT max(last_analyzed_at) FROM gold_track_analytics), "
                        "(SELECT count(*) FROM gold_playlist_analytics), "
                        "(SELECT count(*) FROM silver_enriched_playlists), "
                        "(SELECT count(*) FROM gold_artist_refresh_queue) "
                        "+ (SELECT count(*) FROM gold_track_refresh_queue)"
                    )
                ).one()
            )
        if now != last:
            last, stable_since = now, time.monotonic()
        elif time.monotonic() - stable_since >= quiet_s and now[-1] == 0:
            break
        time.sleep(0.25)
    with session_scope() as session:
        refresh_views(session)


def ingest(
    file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="JSON lines, one envelope each."
    ),
    wait: bool = typer.Option(False, "--wait", help="Follow the records to gold."),
    timeout: float = typer.Option(600, help="Seconds to wait with --wait."),
) -> None:
    """Backfill: enqueue every envelope of FILE.jsonl (bad lines are quarantined, never dropped)."""
    prepare_database(migrate=False)
    lines = _lines(file)
    tag = f"cli:{uuid.uuid4().hex[:12]}"
    console.print(f"{len(lines)} lines from {file} (runs tagged {tag})")
    started = time.time()
    try:
        ok = run_ingest(list(lines), tag, wait, timeout)
    except BatchFailed as exc:
        _print_ingest_summary(tag, started)
        console.print(f"[red]a batch was quarantined whole: {exc}[/red]")
        raise typer.Exit(1) from None
    _print_ingest_summary(tag, started)
    if not ok:
        console.print("[red]timed out before every record reached silver/gold[/red]")
        raise typer.Exit(1)


def _print_ingest_summary(tag: str, started: float) -> None:
    import datetime as dt

    from sqlalchemy import text

    from db.engine import session_scope

    with session_scope() as session:
        row = session.execute(
            text("""
            SELECT count(DISTINCT j.id) AS jobs,
                   count(DISTINCT j.silver_track_id) AS silver,
                   (SELECT count(*) FROM ingest_quarantine
                     WHERE received_at >= CAST(:since AS timestamptz)) AS quarantined
            FROM enrichment_pipeline_runs r LEFT JOIN enrichment_jobs j ON j.run_id = r.id
            WHERE r.triggered_by = :tag"""),
            {"tag": tag, "since": dt.datetime.fromtimestamp(started, dt.UTC)},
        ).one()
    console.print(
        f"new bronze tracks: {row.jobs}  silver tracks touched: {row.silver}  "
        f"quarantined: {row.quarantined}  (see `songnodes quarantine`)"
    )


def schema() -> None:
    """Print the JSON Schema of the ingest envelope."""
    from pipeline.envelope import envelope_json_schema

    typer.echo(json.dumps(envelope_json_schema(), indent=2))


def sandbox(
    catalogue: Path | None = typer.Option(None, help="Catalogue CSV/JSONL (default: shipped)."),
    port: int = typer.Option(8765),
    host: str = typer.Option("127.0.0.1"),
    config: Path | None = typer.Option(None, help="Knobs JSON (latency, errors, limits)."),
) -> None:
    """Serve every HTTP provider's API shapes from a catalogue (simulated values)."""
    from providers.sandbox import cli_main

    cli_main(catalogue, host, port, config)


def providers() -> None:
    """Provider registry (health, limits, cost) and the waterfall per field."""
    from sqlalchemy import text

    from db.engine import session_scope

    prepare_database(migrate=False)
    with session_scope() as session:
        rows = session.execute(
            text(
                "SELECT provider_name, provider_type, enabled, health_status, success_rate, "
                "rate_limit_per_second, rate_limit_per_day, cost_per_call_usd, last_health_check "
                "FROM enrichment_providers ORDER BY provider_name"
            )
        ).all()
        waterfall = session.execute(
            text(
                "SELECT metadata_field, waterfall_mode, required_for_gold, "
                "concat_ws(' -> ', priority_1_provider || ' ' || priority_1_confidence, "
                "priority_2_provider || ' ' || priority_2_confidence, "
                "priority_3_provider || ' ' || priority_3_confidence, "
                "priority_4_provider || ' ' || priority_4_confidence) AS chain "
                "FROM metadata_enrichment_config WHERE enabled ORDER BY metadata_field"
            )
        ).all()
    table = Table(
        "provider",
        "type",
        "enabled",
        "health",
        "success",
        "req/s",
        "req/day",
        "$/call",
        title="enrichment_providers",
    )
    for r in rows:
        table.add_row(
            r[0],
            r[1],
            str(r[2]),
            r[3],
            "" if r[4] is None else f"{float(r[4]):.0%}",
            str(r[5] or ""),
            str(r[6] or ""),
            f"{float(r[7]):.4f}",
        )
    console.print(table)
    wf = Table(
        "field",
        "mode",
        "gold",
        "waterfall (provider min-confidence)",
        title="metadata_enrichment_config",
    )
    for r in waterfall:
        wf.add_row(r[0], r[1], "yes" if r[2] else "", r[3])
    console.print(wf)


def quarantine(
    limit: int = typer.Option(20, help="How many of the newest rows to list."),
    show: str | None = typer.Option(
        None, help="Print one row's original bytes, or one flagged entry as sent (by id)."
    ),
) -> None:
    """Envelopes that failed validation, and setlist entries kept but flagged, newest first."""
    from sqlalchemy import text

    from db.engine import session_scope

    prepare_database(migrate=False)
    with session_scope() as session:
        if show:
            _show_quarantined(session, show)
            return
        total = session.execute(text("SELECT count(*) FROM ingest_quarantine")).scalar_one()
        rows = session.execute(
            text(
                "SELECT id, received_at, source, byte_length, reason FROM ingest_quarantine "
                "ORDER BY received_at DESC LIMIT :n"
            ),
            {"n": limit},
        ).all()
        flagged = session.execute(text("SELECT count(*) FROM playlist_entry_flags")).scalar_one()
        flags = session.execute(
            text(
                "SELECT f.id, f.flagged_at, p.playlist_name, f.entry_index, f.position, f.reason "
                "FROM playlist_entry_flags f JOIN bronze_scraped_playlists p "
                "ON p.id = f.bronze_playlist_id "
                "ORDER BY f.flagged_at DESC, f.bronze_playlist_id, f.entry_index NULLS FIRST "
                "LIMIT :n"
            ),
            {"n": limit},
        ).all()
    table = Table("id", "received", "source", "bytes", "reason", title=f"quarantine ({total})")
    for r in rows:
        table.add_row(str(r[0]), f"{r[1]:%Y-%m-%d %H:%M:%S}", r[2] or "", str(r[3]), r[4][:120])
    console.print(table)
    # Entries of stored setlists: in bronze as sent, flagged instead of quarantining their set.
    entries = Table(
        "id",
        "flagged",
        "setlist",
        "entry",
        "position",
        "reason",
        title=f"flagged setlist entries ({flagged}; kept in bronze as sent)",
    )
    for f in flags:
        entries.add_row(
            str(f[0]),
            f"{f[1]:%Y-%m-%d %H:%M:%S}",
            (f[2] or "")[:40],
            "whole set" if f[3] is None else f"#{f[3] + 1}",
            "" if f[4] is None else str(f[4]),
            f[5][:120],
        )
    console.print(entries)


def _show_quarantined(session: Any, row_id: str) -> None:
    from sqlalchemy import text

    try:
        uuid.UUID(row_id)
    except ValueError:
        console.print(f"[red]{row_id} is not an id[/red]")
        raise typer.Exit(1) from None
    raw = session.execute(
        text("SELECT raw_bytes FROM ingest_quarantine WHERE id = :id"), {"id": row_id}
    ).scalar_one_or_none()
    if raw is not None:
        typer.echo(bytes(raw).decode("utf-8", "backslashreplace"))
        return
    flag = session.execute(
        text(
            "SELECT f.reason, f.entry_index, p.playlist_name, "
            "CASE WHEN f.entry_index IS NULL THEN p.raw_json->'tracks' "
            "ELSE p.raw_json->'tracks'->f.entry_index END AS sent "
            "FROM playlist_entry_flags f JOIN bronze_scraped_playlists p "
            "ON p.id = f.bronze_playlist_id WHERE f.id = :id"
        ),
        {"id": row_id},
    ).one_or_none()
    if flag is None:
        console.print(f"[red]no quarantined row or flagged entry {row_id}[/red]")
        raise typer.Exit(1)
    where = "the whole set" if flag.entry_index is None else f"entry #{flag.entry_index + 1}"
    typer.echo(f"{flag.playlist_name}, {where}: {flag.reason}")
    typer.echo(json.dumps(flag.sent, ensure_ascii=False, indent=2))


def register(app: typer.Typer) -> None:
    from pipeline.cli.demo_cmd import demo

    app.command()(ingest)
    app.command()(schema)
    app.command()(sandbox)
    app.command()(providers)
    app.command()(quarantine)
    app.command()(demo)
    # issue #5: replay / trace / report live in their own module.
    from pipeline.cli.replay_cmds import register as register_replay

    register_replay(app)
    # issue 18: alerts and the metrics endpoint.
    from pipeline.cli.monitoring_cmds import register as register_monitoring

    register_monitoring(app)
