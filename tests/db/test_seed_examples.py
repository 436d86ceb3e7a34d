"""Every SQL example of seed/MEDALLION.md runs as written against the migrated database.

The SQL below is copied verbatim from the seed; only its placeholders are substituted
('uuid-of-...' with real ids, the elided `...` inside a JSON literal removed).
"""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest
from sqlalchemy import Connection, Engine, text

from tests.conftest import libpq_url
from tests.db._helpers import insert_bronze_track, scalar

pytestmark = pytest.mark.db

WATERFALL_QUERY = """
-- Get provider priority for 'bpm' field, excluding failed providers
SELECT * FROM get_provider_priority('bpm', ARRAY['mixesdb']);
"""

REPLAY_QUEUE = """
-- Queue a replay using configuration from a previous run
INSERT INTO pipeline_replay_queue (
    bronze_ids,
    target_layer,
    use_historical_config,
    config_snapshot_run_id,
    requested_by,
    reason
) VALUES (
    ARRAY['uuid-of-track-1', 'uuid-of-track-2'],
    'silver',
    TRUE,
    'uuid-of-historical-run',
    'user@example.com',
    'Debug BPM mismatch with old Beatport API version'
);
"""

BRONZE_SCRAPE = """
INSERT INTO bronze_scraped_tracks (
    source, source_url, scraper_version, raw_json, artist_name, track_title
) VALUES (
    '1001tracklists',
    'https://1001tracklists.com/tracklist/...',
    '1001tracklists-v2.1.0',
    '{"artist": "Deadmau5", "title": "Strobe", ...}'::jsonb,
    'Deadmau5',
    'Strobe'
);
"""

GOLD_POPULATE = """
INSERT INTO gold_track_analytics (
    silver_track_id,
    full_track_name,
    compatible_keys,  -- Precomputed via Camelot wheel
    playlist_appearances,
    enrichment_completeness
)
SELECT
    s.id,
    s.artist_name || ' - ' || s.track_title,
    calculate_compatible_keys(s.key),
    COUNT(pt.playlist_id),
    calculate_enrichment_completeness(s.*)
FROM silver_enriched_tracks s
LEFT JOIN silver_playlist_tracks pt ON pt.track_id = s.id
GROUP BY s.id;

-- Refresh materialized views
SELECT refresh_gold_materialized_views();
"""

MAINTENANCE = """
-- Refresh gold materialized views (run hourly/daily)
SELECT refresh_gold_materialized_views();

-- Vacuum and analyze after large imports
VACUUM ANALYZE bronze_scraped_tracks;
VACUUM ANALYZE silver_enriched_tracks;
VACUUM ANALYZE gold_track_analytics;
"""

PERFORMANCE_ROLLUP = """
-- Update provider performance metrics (run daily)
INSERT INTO provider_performance_history (
    provider_name, metadata_field, request_count, success_count,
    avg_confidence, period_start, period_end
)
SELECT
    provider_used,
    metadata_field,
    COUNT(*),
    COUNT(*) FILTER (WHERE success),
    AVG(provider_confidence),
    DATE_TRUNC('day', NOW() - INTERVAL '1 day'),
    DATE_TRUNC('day', NOW())
FROM enrichment_transformations
WHERE created_at >= NOW() - INTERVAL '1 day'
GROUP BY provider_used, metadata_field;
"""

MONITORING = [
    """
-- Data quality trend (should trend upward)
SELECT
    metric_date,
    data_layer,
    avg_quality_score,
    avg_enrichment_confidence
FROM data_quality_metrics
WHERE metric_date >= NOW() - INTERVAL '30 days'
ORDER BY metric_date DESC, data_layer;
""",
    """
-- Provider health (alert if < 70% success rate)
SELECT
    provider_name,
    health_status,
    success_rate,
    last_health_check
FROM enrichment_providers
WHERE success_rate < 0.70 OR health_status != 'healthy';
""",
    """
-- Pipeline failures (alert on any failed runs)
SELECT
    run_type,
    run_status,
    started_at,
    critical_errors
FROM enrichment_pipeline_runs
WHERE run_status = 'failed'
  AND started_at >= NOW() - INTERVAL '24 hours';
""",
    """
-- Field completeness (alert if drops below 80%)
SELECT
    metadata_field,
    COUNT(*) as total_records,
    COUNT(*) FILTER (WHERE field_value IS NOT NULL) as populated,
    (COUNT(*) FILTER (WHERE field_value IS NOT NULL)::FLOAT / COUNT(*) * 100) as completeness_pct
FROM (
    SELECT
        'bpm' as metadata_field,
        bpm as field_value
    FROM silver_enriched_tracks
) completeness
GROUP BY metadata_field
HAVING (COUNT(*) FILTER (WHERE field_value IS NOT NULL)::FLOAT / COUNT(*) * 100) < 80;
""",
]

LEGACY_STEP_1 = """
-- Step 1: Backfill bronze from existing tracks
INSERT INTO bronze_scraped_tracks (
    source, source_url, scraper_version, raw_json, artist_name, track_title, scraped_at
)
SELECT
    'legacy_migration',
    COALESCE(source_url, 'unknown'),
    'legacy-v1.0',
    jsonb_build_object(
        'artist', artist_name,
        'title', title,
        'bpm', bpm,
        'key', key
        -- ... other fields
    ),
    artist_name,
    title,
    COALESCE(created_at, NOW())
FROM tracks;
"""

LEGACY_STEP_2 = """
-- Step 2: Promote to silver with validation
INSERT INTO silver_enriched_tracks (
    bronze_id, artist_name, track_title, bpm, key,
    validation_status, data_quality_score, enrichment_metadata
)
SELECT
    b.id,
    b.artist_name,
    b.track_title,
    (b.raw_json->>'bpm')::DECIMAL,
    b.raw_json->>'key',
    CASE
        WHEN b.raw_json->>'bpm' IS NOT NULL AND b.raw_json->>'key' IS NOT NULL
        THEN 'valid'
        ELSE 'needs_review'
    END,
    calculate_legacy_quality_score(b.raw_json),
    jsonb_build_object('source', 'legacy_migration', 'migrated_at', NOW())
FROM bronze_scraped_tracks b
WHERE source = 'legacy_migration';
"""

LEGACY_STEP_3 = """
-- Step 3: Populate gold analytics
INSERT INTO gold_track_analytics (
    silver_track_id, artist_name, track_title, full_track_name,
    bpm, key, data_quality_score
)
SELECT
    s.id,
    s.artist_name,
    s.track_title,
    s.artist_name || ' - ' || s.track_title,
    s.bpm,
    s.key,
    s.data_quality_score
FROM silver_enriched_tracks s;
"""


def _run(conn: Connection, sql: str) -> list[tuple[object, ...]]:
    """Run a (possibly multi-statement) script on the raw psycopg connection; last result."""
    raw = conn.connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    cur = raw.execute(sql)
    return [tuple(r) for r in cur.fetchall()] if cur.description else []


def _silver_with_playlist(conn: Connection) -> None:
    conn.execute(
        text(
            "INSERT INTO silver_enriched_tracks (artist_name, track_title, bpm, key, isrc,"
            " genre) VALUES ('Deadmau5', 'Strobe', 128, 'A minor', 'CAA111000001', '{house}'),"
            " ('Eric Prydz', 'Opus', 126, '9A', NULL, NULL);"
            "INSERT INTO silver_enriched_playlists (playlist_name, artist_name)"
            " VALUES ('set', 'Eric Prydz');"
            "INSERT INTO silver_playlist_tracks (playlist_id, track_id, position)"
            " SELECT p.id, t.id, 1 FROM silver_enriched_playlists p, silver_enriched_tracks t"
            " WHERE t.track_title = 'Strobe';"
        )
    )


def test_waterfall_example(db_connection: Connection) -> None:
    """The waterfall query returns the seed's documented output."""
    rows = _run(db_connection, WATERFALL_QUERY)
    assert rows == [
        (1, "beatport", Decimal("0.98")),
        (2, "spotify", Decimal("0.85")),
        (3, "acousticbrainz", Decimal("0.75")),
    ]


def test_replay_queue_example(db_connection: Connection) -> None:
    """The replay INSERT (ARRAY of uuid strings) works with real ids substituted."""
    t1, t2 = (insert_bronze_track(db_connection, source_track_id=str(i)) for i in (1, 2))
    run = scalar(db_connection, "SELECT start_pipeline_run('full', 'test')")
    sql = (
        REPLAY_QUEUE.replace("uuid-of-track-1", str(t1))
        .replace("uuid-of-track-2", str(t2))
        .replace("uuid-of-historical-run", str(run))
    )
    _run(db_connection, sql)
    got = scalar(db_connection, "SELECT bronze_ids FROM pipeline_replay_queue")
    assert got == [str(t1), str(t2)]


def test_bronze_scrape_example(db_connection: Connection) -> None:
    """The scraper's bronze INSERT works (elided JSON completed)."""
    _run(db_connection, BRONZE_SCRAPE.replace(", ...}", "}"))
    assert scalar(db_connection, "SELECT raw_json->>'title' FROM bronze_scraped_tracks") == "Strobe"


def test_gold_populate_example(db_connection: Connection) -> None:
    """The gold INSERT ... SELECT with the SQL helpers, then the refresh, run as written."""
    _silver_with_playlist(db_connection)
    _run(db_connection, GOLD_POPULATE)
    rows = db_connection.execute(
        text(
            "SELECT full_track_name, compatible_keys, playlist_appearances,"
            " enrichment_completeness FROM gold_track_analytics ORDER BY 1"
        )
    ).all()
    assert [tuple(r) for r in rows] == [
        ("Deadmau5 - Strobe", ["8A", "7A", "9A", "8B"], 1, Decimal("0.50")),
        ("Eric Prydz - Opus", ["9A", "8A", "10A", "9B"], 0, Decimal("0.25")),
    ]


def test_maintenance_example(engine: Engine) -> None:
    """Refresh + VACUUM ANALYZE run as written (autocommit: VACUUM refuses transactions)."""
    with psycopg.connect(libpq_url(engine.url.render_as_string(False)), autocommit=True) as c:
        # One statement per call, as psql sends them (a multi-statement string is one implicit
        # transaction, which VACUUM refuses).
        for statement in MAINTENANCE.split(";"):
            if statement.strip():
                c.execute(statement)
        assert c.execute("SELECT count(*) FROM gold_top_tracks_by_genre").fetchone() is not None


def test_performance_rollup_example(db_connection: Connection) -> None:
    """The daily provider-performance rollup aggregates transformations; success_rate generated."""
    run = scalar(db_connection, "SELECT start_pipeline_run('incremental', 'scheduler')")
    for ok in (True, True, False, True):
        db_connection.execute(
            text(
                "SELECT log_transformation(:r, 'enrichment', 'bpm', 'beatport', NULL, NULL,"
                " :ok, 0.9)"
            ),
            {"r": run, "ok": ok},
        )
    _run(db_connection, PERFORMANCE_ROLLUP)
    row = db_connection.execute(
        text("SELECT request_count, success_count, success_rate FROM provider_performance_history")
    ).one()
    assert tuple(row) == (4, 3, Decimal("0.7500"))


@pytest.mark.parametrize("index", range(len(MONITORING)))
def test_monitoring_examples(db_connection: Connection, index: int) -> None:
    """Each monitoring query runs; the completeness alert fires below 80%."""
    _silver_with_playlist(db_connection)
    db_connection.execute(text("UPDATE silver_enriched_tracks SET bpm = NULL"))
    rows = _run(db_connection, MONITORING[index])
    if index == 3:
        assert rows == [("bpm", 2, 0, 0.0)]
    else:
        assert isinstance(rows, list)


def test_legacy_migration_examples(db_connection: Connection) -> None:
    """The three legacy-migration steps run in order against a legacy `tracks` table."""
    _run(
        db_connection,
        "CREATE TABLE tracks (id SERIAL PRIMARY KEY, artist_name TEXT, title TEXT,"
        " bpm NUMERIC, key TEXT, source_url TEXT, created_at TIMESTAMP);"
        "INSERT INTO tracks (artist_name, title, bpm, key, source_url, created_at) VALUES"
        " ('Deadmau5', 'Strobe', 128, 'Am', 'https://old/1', now()),"
        " ('Eric Prydz', 'Opus', NULL, NULL, NULL, NULL);",
    )
    _run(db_connection, LEGACY_STEP_1)
    _run(db_connection, LEGACY_STEP_2)
    _run(db_connection, LEGACY_STEP_3)
    rows = db_connection.execute(
        text(
            "SELECT s.key, s.validation_status, g.full_track_name FROM silver_enriched_tracks s"
            " JOIN gold_track_analytics g ON g.silver_track_id = s.id ORDER BY 3"
        )
    ).all()
    assert [tuple(r) for r in rows] == [
        ("8A", "valid", "Deadmau5 - Strobe"),
        (None, "needs_review", "Eric Prydz - Opus"),
    ]
