"""Silver/gold constraints, identity keys, and the gold materialised views."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, text

from tests.db._helpers import expect_db_error, insert_silver_track, scalar

pytestmark = pytest.mark.db


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
    """Same key ranks first; half-time and adjacent keys count; wrong keys/tempos never do."""
    src = _gold(db_connection, "src", "8A", 128)
    same = _gold(db_connection, "same", "8A", 127)
    adjacent = _gold(db_connection, "adjacent", "9A", 128)
    half = _gold(db_connection, "half", "8B", 64.5)
    _gold(db_connection, "clash", "3B", 128)
    _gold(db_connection, "too_fast", "8A", 140)
    db_connection.execute(text("SELECT refresh_gold_materialized_views()"))
    rows = db_connection.execute(
        text(
            "SELECT recommended_track_id::text, key_relation, tempo_relation, rank"
            " FROM gold_harmonic_mixing_recommendations WHERE source_track_id = :s ORDER BY rank"
        ),
        {"s": src},
    ).all()
    got = [(r[0], r[1], r[2]) for r in rows]
    assert got[0] == (same, "same", "same")
    assert set(got) == {
        (same, "same", "same"),
        (adjacent, "adjacent", "same"),
        (half, "relative", "half"),
    }
    assert [r[3] for r in rows] == [1, 2, 3]


def test_harmonic_keeps_best_ten(db_connection: Connection) -> None:
    """No track gets more than 10 recommendations, however many candidates match."""
    for i in range(15):
        _gold(db_connection, f"t{i}", "5A", 124 + i * 0.1)
    db_connection.execute(text("SELECT refresh_gold_materialized_views()"))
    most = scalar(
        db_connection,
        "SELECT max(c) FROM (SELECT count(*) c FROM gold_harmonic_mixing_recommendations"
        " GROUP BY source_track_id) x",
    )
    assert most == 10


def test_harmonic_view_probes_the_key_bpm_index(db_connection: Connection) -> None:
    """The view's plan probes ix_gold_track_analytics_key_bpm (no nested full scans)."""
    db_connection.execute(text("SET LOCAL enable_seqscan = off"))
    definition = scalar(
        db_connection,
        "SELECT definition FROM pg_matviews WHERE matviewname = :n",
        n="gold_harmonic_mixing_recommendations",
    )
    plan = "\n".join(r[0] for r in db_connection.execute(text(f"EXPLAIN {definition}")))
    assert "ix_gold_track_analytics_key_bpm" in plan


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
