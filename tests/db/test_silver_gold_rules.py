"""Silver/gold constraints, identity keys, and the gold views (materialised and on read)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from db.migrate import sql_file
from tests.db._helpers import expect_db_error, insert_silver_track, scalar

pytestmark = pytest.mark.db

_VIEW = "gold_harmonic_mixing_recommendations"


def test_silver_key_is_normalised_to_camelot(db_connection: Connection) -> None:
    """'A minor' is stored as '8A' by the silver trigger."""
    sid = insert_silver_track(db_connection, "A", "T", key="A minor")
    assert (
        scalar(db_connection, "SELECT key FROM silver_enriched_tracks WHERE id = :i", i=sid) == "8A"
    )


@pytest.mark.parametrize(
    ("column", "value", "constraint"),
    [
        ("bpm", 12, "ck_silver_enriched_tracks_bpm_range"),
        ("bpm", 301, "ck_silver_enriched_tracks_bpm_range"),
        ("key", "not a key", "ck_silver_enriched_tracks_key_camelot"),
        ("isrc", "us-abc-12-34567", "ck_silver_enriched_tracks_isrc_format"),
        ("energy", 1.5, "ck_silver_enriched_tracks_energy_range"),
        ("data_quality_score", -0.1, "ck_silver_enriched_tracks_quality_range"),
        ("validation_status", "great", "ck_silver_enriched_tracks_validation_status"),
    ],
)
def test_silver_checks_name_the_column(
    db_connection: Connection, column: str, value: object, constraint: str
) -> None:
    """Each invalid value fails with an error naming the constraint (and so the column)."""
    expect_db_error(
        db_connection,
        f"INSERT INTO silver_enriched_tracks (artist_name, track_title, {column})"
        " VALUES ('A', 'T', :v)",
        constraint,
        v=value,
    )


@pytest.mark.parametrize(
    ("sql", "constraint"),
    [
        (
            "UPDATE enrichment_providers SET health_status = 'sleepy'",
            "ck_enrichment_providers_health_status",
        ),
        (
            "UPDATE metadata_enrichment_config SET priority_1_confidence = 1.5",
            "ck_metadata_enrichment_config_confidence_range",
        ),
        (
            "UPDATE metadata_enrichment_config SET priority_1_provider = 'nobody'",
            "fk_metadata_enrichment_config_priority_1_provider",
        ),
        (
            "INSERT INTO enrichment_pipeline_runs (run_type) VALUES ('sometimes')",
            "ck_enrichment_pipeline_runs_run_type",
        ),
        (
            "INSERT INTO data_quality_metrics (metric_date, data_layer, metric_hour)"
            " VALUES ('2024-01-01', 'silver', 24)",
            "ck_data_quality_metrics_metric_hour_range",
        ),
        (
            "INSERT INTO pipeline_replay_queue (bronze_ids, requested_by)"
            " VALUES (ARRAY['nope'], 'me')",
            "ck_pipeline_replay_queue_bronze_ids_uuid",
        ),
    ],
)
def test_config_and_lineage_checks_are_named(
    db_connection: Connection, sql: str, constraint: str
) -> None:
    """Statuses, confidences and slot providers are checked under stable names."""
    expect_db_error(db_connection, sql, constraint)


@pytest.mark.parametrize(
    "column", ["isrc", "spotify_id", "beatport_id", "musicbrainz_id", "deezer_id", "tidal_id"]
)
def test_silver_identity_is_unique_per_provider_id(db_connection: Connection, column: str) -> None:
    """Two silver tracks cannot share an ISRC or provider id (NULLs are fine)."""
    value = "USABC1234567" if column == "isrc" else "id-1"
    insert_silver_track(db_connection, "A", "One", **{column: value})
    insert_silver_track(db_connection, "B", "Two")
    insert_silver_track(db_connection, "C", "Three")
    expect_db_error(
        db_connection,
        f"INSERT INTO silver_enriched_tracks (artist_name, track_title, {column})"
        " VALUES ('D', 'Four', :v)",
        f"uq_silver_enriched_tracks_{column}",
        v=value,
    )


def test_identity_key_default_and_uniqueness(db_connection: Connection) -> None:
    """identity_key defaults to lower(artist)|lower(title) and is unique."""
    sid = insert_silver_track(db_connection, "Deadmau5", "Strobe")
    got = scalar(
        db_connection, "SELECT identity_key FROM silver_enriched_tracks WHERE id = :i", i=sid
    )
    assert got == "deadmau5|strobe"
    expect_db_error(
        db_connection,
        "INSERT INTO silver_enriched_tracks (artist_name, track_title)"
        " VALUES ('DEADMAU5', 'strobe')",
        "uq_silver_enriched_tracks_identity_key",
    )


def test_gold_one_row_per_silver_track(db_connection: Connection) -> None:
    """gold_track_analytics is unique on silver_track_id, so upserts ON CONFLICT work."""
    sid = insert_silver_track(db_connection, "A", "T")
    upsert = (
        "INSERT INTO gold_track_analytics (silver_track_id, full_track_name) VALUES (:s, :n)"
        " ON CONFLICT (silver_track_id) DO UPDATE SET full_track_name = EXCLUDED.full_track_name"
    )
    db_connection.execute(text(upsert), {"s": sid, "n": "A - T"})
    db_connection.execute(text(upsert), {"s": sid, "n": "A - T (edit)"})
    rows = db_connection.execute(text("SELECT full_track_name FROM gold_track_analytics")).all()
    assert [r[0] for r in rows] == ["A - T (edit)"]


def test_daily_quality_metrics_are_unique(db_connection: Connection) -> None:
    """Two daily rows (metric_hour NULL) for the same day and layer conflict."""
    sql = "INSERT INTO data_quality_metrics (metric_date, data_layer) VALUES ('2024-05-01', 'gold')"
    db_connection.execute(text(sql))
    expect_db_error(db_connection, sql, "uq_data_quality_metrics_period")


def _gold(conn: Connection, artist: str, key: str, bpm: float, energy: float = 0.8) -> str:
    sid = insert_silver_track(conn, artist, f"{artist} {key} {bpm}")
    return str(
        scalar(
            conn,
            "INSERT INTO gold_track_analytics (silver_track_id, full_track_name, artist_name,"
            " key, bpm, energy, data_quality_score, genre_primary, playlist_appearances)"
            " VALUES (:s, :n, :a, :k, :b, :e, 0.9, 'house', 1) RETURNING id",
            s=sid,
            n=artist,
            a=artist,
            k=key,
            b=bpm,
            e=energy,
        )
    )


def test_harmonic_recommendations(db_connection: Connection) -> None:
    """Same key ranks first; half-time and adjacent keys count; wrong keys/tempos never do.
    Computed on read: no refresh between the inserts and the query."""
    src = _gold(db_connection, "src", "8A", 128)
    same = _gold(db_connection, "same", "8A", 127)
    adjacent = _gold(db_connection, "adjacent", "9A", 128)
    half = _gold(db_connection, "half", "8B", 64.5)
    _gold(db_connection, "clash", "3B", 128)
    _gold(db_connection, "too_fast", "8A", 140)
    got = _suggestions(db_connection, src)
    assert got[0] == (same, "same", "same", 1)
    assert {g[:3] for g in got} == {
        (same, "same", "same"),
        (adjacent, "adjacent", "same"),
        (half, "relative", "half"),
    }
    assert [g[3] for g in got] == [1, 2, 3]


def test_harmonic_keeps_best_ten(db_connection: Connection) -> None:
    """No track gets more than 10 recommendations, however many candidates match."""
    for i in range(15):
        _gold(db_connection, f"t{i}", "5A", 124 + i * 0.1)
    most = scalar(
        db_connection,
        "SELECT max(c) FROM (SELECT count(*) c FROM gold_harmonic_mixing_recommendations"
        " GROUP BY source_track_id) x",
    )
    assert most == 10


def _suggestions(conn: Connection, source: str) -> list[tuple[str, str, str, int]]:
    rows = conn.execute(
        text(
            "SELECT recommended_track_id::text, key_relation, tempo_relation, rank"
            " FROM gold_harmonic_mixing_recommendations WHERE source_track_id = :s ORDER BY rank"
        ),
        {"s": source},
    ).all()
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def test_harmonic_view_is_current_after_every_gold_upsert(db_connection: Connection) -> None:
    """Inserts, updates and deletes of gold tracks show at once, without any refresh; the
    refresh function still refreshes the two materialised views and leaves this one alone."""
    src = _gold(db_connection, "src", "8A", 128)
    assert _suggestions(db_connection, src) == []
    near = _gold(db_connection, "near", "8A", 127)
    assert _suggestions(db_connection, src) == [(near, "same", "same", 1)]
    far = _gold(db_connection, "far", "2B", 128)
    assert [s[0] for s in _suggestions(db_connection, src)] == [near]
    db_connection.execute(
        text("UPDATE gold_track_analytics SET key = '9A' WHERE id = :i"), {"i": far}
    )
    assert _suggestions(db_connection, src) == [
        (near, "same", "same", 1),
        (far, "adjacent", "same", 2),
    ]
    db_connection.execute(
        text("UPDATE gold_track_analytics SET bpm = 150 WHERE id = :i"), {"i": near}
    )
    assert _suggestions(db_connection, src) == [(far, "adjacent", "same", 1)]
    db_connection.execute(text("DELETE FROM gold_track_analytics WHERE id = :i"), {"i": far})
    assert _suggestions(db_connection, src) == []
    db_connection.execute(
        text("UPDATE gold_track_analytics SET bpm = NULL WHERE id = :i"), {"i": src}
    )
    assert (
        scalar(
            db_connection,
            "SELECT count(*) FROM gold_harmonic_mixing_recommendations WHERE source_track_id = :s",
            s=src,
        )
        == 0
    )
    db_connection.execute(text("SELECT refresh_gold_materialized_views()"))
    definition = scalar(
        db_connection,
        "SELECT prosrc FROM pg_proc WHERE proname = 'refresh_gold_materialized_views'",
    )
    assert "gold_top_tracks_by_genre" in definition
    assert "gold_artist_collaboration_network" in definition
    assert "harmonic" not in definition


# Gold tracks with pairwise distinct BPMs (x = 37g mod 1200 is distinct for g <= 1200), so the
# "nearest 5 BPMs" cut never falls on a tie: 70% house 118-130, 20% half time 52-64, 10% double
# time 236-248; 24 Camelot keys; a few without key, BPM or energy.
_BULK_GOLD = """
WITH s AS (
    INSERT INTO silver_enriched_tracks (artist_name, track_title)
    SELECT 'bulk ' || g, 'title ' || g FROM generate_series(1, :n) g
    RETURNING id, artist_name
)
INSERT INTO gold_track_analytics (silver_track_id, full_track_name, artist_name, key, bpm,
                                  energy)
SELECT s.id, s.artist_name, s.artist_name,
       CASE WHEN g % 50 = 0 THEN NULL
            ELSE (g % 12 + 1)::text || CASE WHEN g / 12 % 2 = 0 THEN 'A' ELSE 'B' END END,
       CASE WHEN g % 45 = 0 THEN NULL
            ELSE (CASE WHEN g % 10 < 7 THEN 118 WHEN g % 10 < 9 THEN 52 ELSE 236 END)
                 + ((g * 37) % 1200) / 100.0 END,
       CASE WHEN g % 9 = 0 THEN NULL ELSE ((g * 13) % 100) / 100.0 END
FROM (SELECT id, artist_name, substr(artist_name, 6)::int AS g FROM s) s
"""


def _bulk_gold(conn: Connection, n: int) -> None:
    conn.execute(text(_BULK_GOLD), {"n": n})
    conn.execute(text("ANALYZE gold_track_analytics"))


def _plan_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", ()):
        yield from _plan_nodes(child)


def test_harmonic_view_computes_only_the_asked_track(db_connection: Connection) -> None:
    """A plain view, not materialised: `WHERE source_track_id = X` fetches that one gold row by
    primary key and computes its suggestions once, never every track's."""
    assert scalar(db_connection, "SELECT count(*) FROM pg_views WHERE viewname = :n", n=_VIEW) == 1
    assert (
        scalar(db_connection, "SELECT count(*) FROM pg_matviews WHERE matviewname = :n", n=_VIEW)
        == 0
    )
    _bulk_gold(db_connection, 3000)
    src = scalar(db_connection, "SELECT id FROM gold_track_analytics WHERE key = '8A' LIMIT 1")
    assert src is not None
    explain = scalar(
        db_connection,
        f"EXPLAIN (ANALYZE, FORMAT JSON) SELECT * FROM {_VIEW} WHERE source_track_id = :s"
        " ORDER BY rank",
        s=src,
    )
    nodes = list(_plan_nodes(explain[0]["Plan"]))
    gold_scans = [n for n in nodes if n.get("Relation Name") == "gold_track_analytics"]
    assert [(n["Node Type"], n["Index Name"], n["Actual Rows"]) for n in gold_scans] == [
        ("Index Scan", "pk_gold_track_analytics", 1)
    ]
    calls = [n for n in nodes if n.get("Function Name") == "harmonic_recommendations_for"]
    assert [(n["Actual Loops"], n["Actual Rows"]) for n in calls] == [(1, 10)]


def test_harmonic_probes_are_ordered_index_scans(db_connection: Connection) -> None:
    """Inside harmonic_recommendations_for, each compatible key x tempo band is an ordered probe
    of ix_gold_track_analytics_key_bpm with LIMIT (bitmap scans off, JIT off: the settings live
    on the function, since a view cannot carry them). The nested plan is read with auto_explain."""
    config = scalar(
        db_connection,
        "SELECT proconfig FROM pg_proc WHERE proname = 'harmonic_recommendations_for'",
    )
    assert set(config) == {"enable_bitmapscan=off", "jit=off"}
    _bulk_gold(db_connection, 3000)
    src = scalar(db_connection, "SELECT id FROM gold_track_analytics WHERE key = '8A' LIMIT 1")
    assert src is not None
    savepoint = db_connection.begin_nested()
    try:
        db_connection.execute(text("LOAD 'auto_explain'"))
    except DBAPIError as exc:  # not a superuser: the library cannot be loaded
        savepoint.rollback()
        pytest.skip(f"auto_explain cannot be loaded: {exc.orig}")
    savepoint.commit()
    for setting in (
        "auto_explain.log_min_duration = 0",
        "auto_explain.log_nested_statements = on",
        "auto_explain.log_level = notice",
        "client_min_messages = notice",
    ):
        db_connection.execute(text(f"SET LOCAL {setting}"))
    raw = db_connection.connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    notices: list[str] = []

    def collect(diag: psycopg.errors.Diagnostic) -> None:
        notices.append(diag.message_primary or "")

    raw.add_notice_handler(collect)
    try:
        db_connection.execute(
            text(f"SELECT * FROM {_VIEW} WHERE source_track_id = :s"), {"s": src}
        ).all()
    finally:
        raw.remove_notice_handler(collect)
        db_connection.execute(text("SET LOCAL auto_explain.log_min_duration = -1"))
    inner = [n for n in notices if "calculate_compatible_keys" in n]
    assert len(inner) == 1, notices
    plan = inner[0]
    assert "Index Scan using ix_gold_track_analytics_key_bpm" in plan
    assert "Index Scan Backward using ix_gold_track_analytics_key_bpm" in plan
    assert "Bitmap" not in plan
    assert "Seq Scan" not in plan


def test_harmonic_view_matches_the_003_materialised_view(db_connection: Connection) -> None:
    """Same columns, types and rows as the materialised view of 003, which 007's down file
    restores (run here inside the test's rolled-back transaction)."""
    _bulk_gold(db_connection, 600)
    columns = """
        SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
        WHERE attrelid = to_regclass(:n) AND attnum > 0 AND NOT attisdropped ORDER BY attnum"""
    on_read_columns = db_connection.execute(text(columns), {"n": _VIEW}).all()
    db_connection.execute(
        text(f"CREATE TEMP TABLE harmonic_on_read ON COMMIT DROP AS SELECT * FROM {_VIEW}")
    )
    raw = db_connection.connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    raw.execute(sql_file(7, "down").read_text(encoding="utf-8"))
    assert (
        scalar(db_connection, "SELECT count(*) FROM pg_matviews WHERE matviewname = :n", n=_VIEW)
        == 1
    )
    assert db_connection.execute(text(columns), {"n": _VIEW}).all() == on_read_columns
    assert len(on_read_columns) == 13
    total = scalar(db_connection, "SELECT count(*) FROM harmonic_on_read")
    assert total == scalar(db_connection, f"SELECT count(*) FROM {_VIEW}")
    assert total > 5000  # most of the 600 tracks have a full top 10
    for a, b in (("harmonic_on_read", _VIEW), (_VIEW, "harmonic_on_read")):
        assert (
            scalar(db_connection, f"SELECT count(*) FROM (TABLE {a} EXCEPT ALL TABLE {b}) d") == 0
        )


def test_collaboration_network_pairs_playlist_artists(db_connection: Connection) -> None:
    """Headliner + featured artists of one playlist form pairs; other artists do not."""
    for name, headliner, featured in (
        ("set1", "Anna", ["Ben", "Cleo"]),
        ("set2", "Ben", ["Anna"]),
        ("set3", "Dora", []),
    ):
        pid = scalar(
            db_connection,
            "INSERT INTO silver_enriched_playlists (playlist_name, artist_name)"
            " VALUES (:n, :a) RETURNING id",
            n=name,
            a=headliner,
        )
        db_connection.execute(
            text(
                "INSERT INTO gold_playlist_analytics (silver_playlist_id, playlist_name,"
                " artist_name, featured_artists, event_date) VALUES (:p, :n, :a, :f, '2024-01-01')"
            ),
            {"p": pid, "n": name, "a": headliner, "f": featured},
        )
    db_connection.execute(text("SELECT refresh_gold_materialized_views()"))
    rows = db_connection.execute(
        text(
            "SELECT artist_1, artist_2, shared_playlists FROM gold_artist_collaboration_network"
            " ORDER BY 1, 2"
        )
    ).all()
    assert [tuple(r) for r in rows] == [("Anna", "Ben", 2), ("Anna", "Cleo", 1), ("Ben", "Cleo", 1)]


def test_top_tracks_by_genre_ranks(db_connection: Connection) -> None:
    """The leaderboard ranks by appearances within a genre and refreshes concurrently."""
    a = _gold(db_connection, "a", "1A", 120)
    b = _gold(db_connection, "b", "1A", 121)
    db_connection.execute(
        text("UPDATE gold_track_analytics SET playlist_appearances = 9 WHERE id = :b"), {"b": b}
    )
    db_connection.execute(text("SELECT refresh_gold_materialized_views()"))
    rows = db_connection.execute(
        text("SELECT track_id::text, rank FROM gold_top_tracks_by_genre ORDER BY rank")
    ).all()
    assert [tuple(r) for r in rows] == [(b, 1), (a, 2)]
