"""Beat maintenance on real PostgreSQL: idempotent rollups, sweeper and reaper."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text
from sqlalchemy.orm import Session

from pipeline import maintenance
from pipeline.enrich import create_jobs
from pipeline.ingest import ingest_messages
from pipeline.runs import start_run

YESTERDAY = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)


def _track(session: Session, n: int) -> str:
    result = ingest_messages(
        session,
        [
            {
                "kind": "track",
                "source": "t-maint",
                "source_url": f"https://example.test/{n}",
                "scraper_version": "1",
                "artist_name": f"Artist {n}",
                "track_title": f"Title {n}",
                "raw_json": {"n": n},
            }
        ],
    )
    return str(result.track_ids[0])


def _transformation(
    session: Session,
    run_id: str,
    provider: str,
    field: str,
    ok: bool,
    conf: float | None,
    when: dt.datetime,
) -> None:
    session.execute(
        text("""
        INSERT INTO enrichment_transformations (run_id, transformation_type, metadata_field,
            provider_used, provider_confidence, success, processing_time_ms, created_at)
        VALUES (:r, 'enrichment', :f, :p, :c, :ok, 40, :at)"""),
        {"r": run_id, "f": field, "p": provider, "c": conf, "ok": ok, "at": when},
    )


def test_provider_rollup_is_idempotent(db_session: Session) -> None:
    """Two rollups of the same day leave one row per provider x field with the same counts."""
    run_id = str(start_run(db_session, "incremental", "test"))
    noon = dt.datetime.combine(YESTERDAY, dt.time(12), dt.UTC)
    for ok, conf in ((True, 0.99), (True, 0.95), (False, None)):
        _transformation(db_session, run_id, "beatport", "bpm", ok, conf, noon)
    _transformation(db_session, run_id, "spotify", "bpm", True, 0.9, noon)
    _transformation(
        db_session, run_id, "spotify", "bpm", True, 0.9, noon - dt.timedelta(days=2)
    )  # another day: not counted

    def rows() -> list[tuple[object, ...]]:
        return [
            tuple(r)
            for r in db_session.execute(
                text("""
            SELECT provider_name, metadata_field, request_count, success_count, avg_confidence
            FROM provider_performance_history WHERE period_start = :d
            ORDER BY provider_name"""),
                {"d": dt.datetime.combine(YESTERDAY, dt.time(), dt.UTC)},
            )
        ]

    maintenance.rollup_providers(db_session, YESTERDAY)
    first = rows()
    maintenance.rollup_providers(db_session, YESTERDAY)
    assert rows() == first
    assert [(r[0], r[2], r[3]) for r in first] == [("beatport", 3, 2), ("spotify", 1, 1)]
    rate = db_session.execute(
        text("SELECT success_rate FROM enrichment_providers WHERE provider_name = 'beatport'")
    ).scalar_one()
    assert round(float(rate), 4) == round(2 / 3, 4)


def test_quality_metrics_one_row_per_layer_and_day(db_session: Session) -> None:
    """Running the daily metrics twice keeps exactly one row per layer for the day."""
    _track(db_session, 1)
    maintenance.record_quality_metrics(db_session)
    maintenance.record_quality_metrics(db_session)
    rows = db_session.execute(
        text(
            "SELECT data_layer, count(*) FROM data_quality_metrics "
            "WHERE metric_date = CURRENT_DATE "
            "AND metric_hour IS NULL GROUP BY data_layer ORDER BY data_layer"
        )
    ).all()
    assert [tuple(r) for r in rows] == [("bronze", 1), ("gold", 1), ("silver", 1)]
    bronze = db_session.execute(
        text(
            "SELECT total_records FROM data_quality_metrics WHERE data_layer = 'bronze' "
            "AND metric_date = CURRENT_DATE"
        )
    ).scalar_one()
    assert bronze == 1


def test_sweeper_finds_stalled_lookups_and_orphans(db_session: Session) -> None:
    """A lookup pending past the timeout is re-enqueued; a bronze row with no job is returned."""
    stalled, orphan = _track(db_session, 2), _track(db_session, 3)
    run_id = start_run(db_session, "incremental", "test")
    nxt = create_jobs(db_session, run_id, [stalled])
    assert nxt.lookups, "the plan should ask at least one provider"
    db_session.execute(text("UPDATE enrichment_lookups SET updated_at = now() - interval '1 hour'"))
    db_session.execute(text("UPDATE enrichment_jobs SET created_at = now() - interval '1 hour'"))
    # bronze is immutable: age the orphan by looking far ahead instead of editing created_at
    again, orphans = maintenance.find_stalled_work(db_session, older_than_s=600)
    assert sorted(again.lookups) == sorted(nxt.lookups)
    assert orphans == []  # the orphan is younger than the timeout
    _, orphans = maintenance.find_stalled_work(db_session, older_than_s=-3600)
    assert orphan in orphans and stalled not in orphans
    fresh, _ = maintenance.find_stalled_work(db_session, older_than_s=600)
    assert fresh.lookups == {}, "a swept lookup is not re-sent again before the timeout"


def test_reaper_closes_stuck_runs(db_session: Session) -> None:
    """A run running for hours with open jobs is closed as failed with a critical error."""
    bronze = _track(db_session, 4)
    run_id = start_run(db_session, "incremental", "test")
    create_jobs(db_session, run_id, [bronze])
    db_session.execute(
        text(
            "UPDATE enrichment_pipeline_runs SET started_at = now() - interval '7 hours' "
            "WHERE id = :r"
        ),
        {"r": run_id},
    )
    reaped = maintenance.reap_runs(db_session, older_than_s=6 * 3600)
    assert reaped == [str(run_id)]
    run = db_session.execute(
        text("SELECT run_status, critical_errors FROM enrichment_pipeline_runs WHERE id = :r"),
        {"r": run_id},
    ).one()
    assert run.run_status == "failed" and "reaped: stuck in running" in run.critical_errors
    job = db_session.execute(
        text("SELECT status FROM enrichment_jobs WHERE run_id = :r"), {"r": run_id}
    ).scalar_one()
    assert job == "failed"


def test_breaker_transitions_reach_the_registry(database_url_env: str, engine: object) -> None:
    """open -> down, half_open -> degraded, closed -> healthy in enrichment_providers."""
    from sqlalchemy import Engine

    from tasks.enrich import record_health

    assert isinstance(engine, Engine)
    seen = []
    try:
        for old, new, health in (
            ("closed", "open", "down"),
            ("open", "half_open", "degraded"),
            ("half_open", "closed", "healthy"),
        ):
            record_health("tidal", old, new)
            with engine.connect() as conn:
                row = conn.execute(
                    text(
                        "SELECT health_status, last_health_check FROM enrichment_providers "
                        "WHERE provider_name = 'tidal'"
                    )
                ).one()
            assert row.health_status == health and row.last_health_check is not None
            seen.append(row.last_health_check)
    finally:
        record_health("tidal", "open", "closed")
    assert seen == sorted(seen)


def test_stale_gold_is_found_and_healed(db_session: Session) -> None:
    """A valid silver track with no gold row is reported until its gold row is written."""
    from pipeline.gold import upsert_track_analytics

    silver_id = db_session.execute(
        text("""
        INSERT INTO silver_enriched_tracks (artist_name, track_title, identity_key, bpm, key,
            validation_status, data_quality_score, validation_errors)
        VALUES ('Gold Sweep', 'Lost Message', 'gold sweep|lost message', 128, '8A', 'valid',
                0.9, '[]') RETURNING id""")
    ).scalar_one()
    assert str(silver_id) in maintenance.stale_gold(db_session, older_than_s=-60)
    upsert_track_analytics(db_session, [str(silver_id)])
    assert str(silver_id) not in maintenance.stale_gold(db_session, older_than_s=-60)
