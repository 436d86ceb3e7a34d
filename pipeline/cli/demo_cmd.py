"""``songnodes demo``: the whole pipeline on real chart names, with nothing installed.

Embedded PostgreSQL (unless ``DATABASE_URL``), an in-process Celery worker (unless
``CELERY_BROKER_URL``), and the sandbox serving every provider's API shapes. Provider values (BPM,
key, ISRC, ...) are SIMULATED by the sandbox and labelled so in the summary.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

import typer
from rich.panel import Panel
from rich.table import Table
from sqlalchemy import text

from pipeline.cli.common import console, prepare_database

__all__ = ["demo"]

# The sandbox is local: the real APIs' request budgets (MusicBrainz 1/s) would only slow the demo.
SANDBOX_RATE_LIMIT = "500"


def demo(
    tracks_per_chart: int = typer.Option(8, help="Chart tracks per genre (35 genres)."),
    setlists: int = typer.Option(5, help="Simulated setlists built from chart tracks."),
    timeout: float = typer.Option(300, help="Seconds to wait for the pipeline."),
) -> None:
    """Run scraped chart tracks and setlists through bronze -> silver -> gold and summarise."""
    from pipeline.cli.pipeline_cmds import run_ingest
    from pipeline.demo_data import demo_envelopes
    from pipeline.lookups.clients import reset_clients
    from providers.registry import available_providers
    from providers.sandbox import start_in_thread

    started = time.monotonic()
    console.rule("[bold]SongNodes demo")
    handle = start_in_thread()
    os.environ.update(handle.env)
    for name in available_providers():
        os.environ.setdefault(f"SONGNODES_{name.upper()}_RATE_LIMIT_PER_SECOND", SANDBOX_RATE_LIMIT)
    reset_clients()
    console.print(f"sandbox providers on {handle.base_url} (simulated values)")
    console.print(
        "broker: "
        + (
            os.environ.get("CELERY_BROKER_URL")
            or "none set -> in-process worker (memory transport)"
        )
    )
    prepare_database(migrate=True)
    tracks, sets = demo_envelopes(tracks_per_chart, setlists)
    tag = f"demo:{uuid.uuid4().hex[:12]}"
    console.print(f"{len(tracks)} chart tracks (35 Beatport genres) + {len(sets)} setlists")
    try:
        ok = run_ingest([*tracks, *sets], tag, wait=True, timeout_s=timeout)
        stats = handle.stats()
    finally:
        handle.stop()
    _summary(tag, stats, time.monotonic() - started)
    if not ok:
        console.print("[red]the pipeline did not finish within the timeout[/red]")
        raise typer.Exit(1)


def _scalar(session: Any, sql: str, **params: Any) -> Any:
    return session.execute(text(sql), params).scalar_one()


def _summary(tag: str, stats: dict[str, dict[str, int]], elapsed: float) -> None:
    from db.engine import session_scope

    with session_scope() as s:
        layers = Table("layer", "table", "rows", title="Medallion layers (whole database)")
        for layer, table in (
            ("bronze", "bronze_scraped_tracks"),
            ("bronze", "bronze_scraped_playlists"),
            ("bronze", "bronze_api_enrichments"),
            ("bronze", "ingest_quarantine"),
            ("silver", "silver_enriched_tracks"),
            ("silver", "silver_enriched_artists"),
            ("silver", "silver_enriched_playlists"),
            ("gold", "gold_track_analytics"),
            ("gold", "gold_artist_analytics"),
            ("gold", "gold_playlist_analytics"),
            ("gold", "gold_harmonic_mixing_recommendations"),
        ):
            layers.add_row(layer, table, f"{_scalar(s, f'SELECT count(*) FROM {table}'):,}")
        console.print(layers)

        q = s.execute(
            text("""
            SELECT round(avg(data_quality_score), 2) AS score,
                   count(*) FILTER (WHERE validation_status = 'valid') AS valid,
                   count(*) FILTER (WHERE validation_status = 'warning') AS warning,
                   count(*) FILTER (WHERE validation_status = 'needs_review') AS review,
                   round(avg((bpm IS NOT NULL)::int) * 100) AS bpm,
                   round(avg((key IS NOT NULL)::int) * 100) AS key,
                   round(avg((coalesce(cardinality(genre), 0) > 0)::int) * 100) AS genre,
                   round(avg((isrc IS NOT NULL)::int) * 100) AS isrc
            FROM silver_enriched_tracks""")
        ).one()
        console.print(
            Panel(
                f"average quality {q.score}  |  valid {q.valid}, warning {q.warning}, "
                f"needs review {q.review}\nfield completeness: BPM {q.bpm}%, key {q.key}%, "
                f"genre {q.genre}%, ISRC {q.isrc}%",
                title="Silver quality",
            )
        )

        calls = Table(
            "provider",
            "lookups",
            "found",
            "API calls",
            "cost $",
            "avg ms",
            title="Provider calls in this demo",
        )
        for r in s.execute(
            text("""
                SELECT l.provider, count(*) AS lookups,
                       count(*) FILTER (WHERE l.status = 'found') AS found,
                       sum(l.api_calls) AS calls, sum(l.cost_usd) AS cost,
                       round(avg(l.latency_ms)) AS ms
                FROM enrichment_lookups l JOIN enrichment_jobs j ON j.id = l.job_id
                JOIN enrichment_pipeline_runs r ON r.id = j.run_id
                WHERE r.triggered_by = :tag GROUP BY l.provider ORDER BY l.provider"""),
            {"tag": tag},
        ):
            calls.add_row(
                r.provider,
                str(r.lookups),
                str(r.found),
                str(r.calls or 0),
                f"{float(r.cost or 0):.4f}",
                # 0 is a real reading (lookups answered from a batch request's parts).
                "" if r.ms is None else str(r.ms),
            )
        console.print(calls)
        # Issue 17: a sighting of a track already enriched (and fresh) asks no provider. The
        # embedded database keeps its data between demos, so a second demo asks almost nothing;
        # say so rather than leave an empty provider table unexplained.
        seen = s.execute(
            text("""
                SELECT count(*) AS sightings,
                       count(*) FILTER (WHERE NOT EXISTS (
                           SELECT 1 FROM enrichment_lookups l
                           WHERE l.job_id = j.id AND l.api_calls > 0)) AS unasked
                FROM enrichment_jobs j JOIN enrichment_pipeline_runs r ON r.id = j.run_id
                WHERE r.triggered_by = :tag"""),
            {"tag": tag},
        ).one()
        kept = (
            "The data stays in the database (embedded: $SONGNODES_HOME, default "
            "~/.local/state/songnodes)"
        )
        if seen.sightings:
            console.print(
                f"{seen.unasked} of {seen.sightings} sightings asked no provider: their track "
                "was already enriched and fresh, or another sighting asked for it (enrich "
                f"once). {kept}, so another demo reuses it."
            )
        else:
            console.print(
                "Nothing new: every record of this demo was already in bronze, so ingest added "
                f"nothing and no provider was asked (a re-run is idempotent). {kept}."
            )

        track = s.execute(
            text("""
            SELECT source_track_id, count(*) AS n FROM gold_harmonic_mixing_recommendations
            GROUP BY source_track_id ORDER BY n DESC, source_track_id LIMIT 1""")
        ).first()
        if track is not None:
            src = s.execute(
                text(
                    "SELECT full_track_name, key, bpm, energy FROM "
                    "gold_track_analytics WHERE id = :id"
                ),
                {"id": track.source_track_id},
            ).one()
            mix = Table(
                "#",
                "track",
                "key",
                "BPM",
                "why",
                "score",
                title=f"Mix out of: {src.full_track_name}  ({src.key}, {src.bpm} BPM)",
            )
            for r in s.execute(
                text("""
                    SELECT h.rank, g.full_track_name, h.recommended_key, h.recommended_bpm,
                           h.key_relation, h.tempo_relation, h.compatibility_score
                    FROM gold_harmonic_mixing_recommendations h
                    JOIN gold_track_analytics g ON g.id = h.recommended_track_id
                    WHERE h.source_track_id = :id ORDER BY h.rank LIMIT 5"""),
                {"id": track.source_track_id},
            ):
                mix.add_row(
                    str(r.rank),
                    r.full_track_name,
                    r.recommended_key,
                    str(r.recommended_bpm),
                    f"{r.key_relation} key, {r.tempo_relation} tempo",
                    str(r.compatibility_score),
                )
            console.print(mix)
        flow = s.execute(
            text("""SELECT playlist_name, track_count, harmonic_flow_score, key_changes,
                                         track_identification_rate, avg_bpm
                                  FROM gold_playlist_analytics ORDER BY playlist_name""")
        ).all()
        if flow:
            sets = Table(
                "setlist",
                "tracks",
                "harmonic flow",
                "key changes",
                "identified",
                "avg BPM",
                title="Setlists (gold)",
            )
            for r in flow:
                sets.add_row(
                    r.playlist_name,
                    str(r.track_count),
                    str(r.harmonic_flow_score),
                    str(r.key_changes),
                    str(r.track_identification_rate),
                    str(r.avg_bpm),
                )
            console.print(sets)
    total = sum(v.get("requests", 0) for v in stats.values())
    over = sum(v.get("over_limit", 0) for v in stats.values())
    console.print(
        f"sandbox: {total} requests, {over} over a provider's limit. "
        "[dim]BPM, key, ISRC and other provider values are SIMULATED by the sandbox; "
        "artist/title/genre names are real Beatport chart entries (2025-10-29).[/dim]"
    )
    console.print(f"[green]done in {elapsed:.1f} s[/green]")
