"""pipeline.trace and pipeline.report on real PostgreSQL (each test rolled back)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from pipeline.merge import merge_job
from pipeline.report import build_report, plot_report
from pipeline.runs import start_run
from pipeline.trace import find_silver, trace_field
from tests.db._helpers import insert_scraped_track


def _run_with_answers(
    session: Session, bronze: str, answers: list[tuple[str, Any, float | None, bool]], kind: str
) -> tuple[str, Any]:
    run = str(start_run(session, kind, "test"))
    job = session.execute(
        text(
            "INSERT INTO enrichment_jobs (run_id, bronze_track_id, status, fields) "
            "VALUES (:r, :b, 'merging', ARRAY['bpm', 'artist_name', 'track_title']) RETURNING id"
        ),
        {"r": run, "b": bronze},
    ).scalar_one()
    for provider, value, conf, ok in answers:
        session.execute(
            text(
                "INSERT INTO enrichment_transformations (run_id, bronze_id, transformation_type,"
                " metadata_field, provider_used, provider_confidence, output_value, success,"
                " error_message) VALUES (:r, :b, 'enrichment', 'bpm', :p, :c, CAST(:v AS jsonb),"
                " :ok, :err)"
            ),
            {
                "r": run,
                "b": bronze,
                "p": provider,
                "c": conf,
                "v": "null" if value is None else str(value),
                "ok": ok,
                "err": None if ok else "HTTP 503",
            },
        )
    return run, merge_job(session, str(job), override_fields=True)


def test_trace_explains_winner_thresholds_and_later_replay(db_session: Session) -> None:
    """trace_field shows each provider's answer against its slot threshold, the winning rule,
    the bronze source, and a later replay that changed the value."""
    artist, title = f"Tracer {uuid.uuid4().hex[:6]}", "Why So Fast"
    bronze = insert_scraped_track(db_session.connection(), artist, title)
    run1, merged = _run_with_answers(
        db_session,
        bronze,
        [
            ("beatport", 256.0, 0.60, True),
            ("spotify", 128.0, 0.90, True),
            ("mixesdb", None, None, False),
        ],
        "manual",
    )
    run2, _ = _run_with_answers(db_session, bronze, [("beatport", 126.0, 0.99, True)], "replay")
    assert find_silver(db_session, f"{artist} - {title}") == [merged.silver_track_id]
    trace = trace_field(db_session, str(merged.silver_track_id), "bpm")
    assert [s.bronze_id for s in trace.sources] == [bronze]
    assert [d.run_id for d in trace.decisions] == [run1, run2]
    first, replay = trace.decisions
    assert first.winner == "spotify" and first.rules["priority"] == 2
    beatport = next(a for a in first.answers if a.provider == "beatport")
    assert (beatport.confidence, beatport.threshold, beatport.priority) == (0.6, 0.98, 1)
    mixesdb = next(a for a in first.answers if a.provider == "mixesdb")
    assert not mixesdb.success and mixesdb.error == "HTTP 503"
    assert replay.run_type == "replay" and replay.changed and replay.winner == "beatport"
    assert float(trace.current_value) == 126.0 and trace.current_provider == "beatport"


def test_report_counts_runs_providers_and_completeness(db_session: Session, tmp_path: Path) -> None:
    """build_report sums runs by type/status, provider lookups and silver completeness, and
    plot_report writes a PNG."""
    bronze = insert_scraped_track(
        db_session.connection(), f"Reporter {uuid.uuid4().hex[:6]}", "Numbers"
    )
    run, _ = _run_with_answers(db_session, bronze, [("spotify", 124.0, 0.95, True)], "manual")
    db_session.execute(
        text(
            "INSERT INTO enrichment_lookups (job_id, provider, round, fields, status, api_calls,"
            " cost_usd, latency_ms) SELECT id, 'spotify', 1, ARRAY['bpm'], 'found', 2, 0.004, 80"
            " FROM enrichment_jobs WHERE run_id = :r"
        ),
        {"r": run},
    )
    rep = build_report(db_session, days=1)
    manual = [r for r in rep.runs if r["run_type"] == "manual"]
    assert sum(r["runs"] for r in manual) >= 1
    spotify = next(p for p in rep.providers if p["provider"] == "spotify")
    assert spotify["lookups"] >= 1 and spotify["api_calls"] >= 2
    assert rep.completeness["bpm"] > 0
    assert any(r["total_records"] >= 1 for r in rep.quality_trend)
    out = tmp_path / "report.png"
    plot_report(rep, out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
