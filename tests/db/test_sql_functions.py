"""SQL helpers: to_camelot, calculate_compatible_keys, completeness, legacy score, waterfall."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import Connection, text

from tests.db._helpers import insert_silver_track, scalar

pytestmark = pytest.mark.db

# Camelot reference wheel: number -> (minor, major).
WHEEL = {
    1: ("G#m", "B"), 2: ("Ebm", "F#"), 3: ("Bbm", "Db"), 4: ("Fm", "Ab"),
    5: ("Cm", "Eb"), 6: ("Gm", "Bb"), 7: ("Dm", "F"), 8: ("Am", "C"),
    9: ("Em", "G"), 10: ("Bm", "D"), 11: ("F#m", "A"), 12: ("C#m", "E"),
}  # fmt: skip

SPELLINGS = [
    ("8A", "8A"), ("08a", "8A"), ("12b", "12B"), ("1m", "8A"), ("1d", "8B"), ("6m", "1A"),
    ("12d", "7B"), ("A minor", "8A"), ("Am", "8A"), ("A min", "8A"), ("a MINOR", "8A"),
    ("C# Major", "3B"), ("Db major", "3B"), ("Db", "3B"), ("C#", "3B"), ("B", "1B"),
    ("Bb", "6B"), ("Bbm", "3A"), ("E♭ minor", "2A"), ("F♯m", "11A"), ("G#m", "1A"),
    ("Abm", "1A"), ("C#m", "12A"), ("Dbm", "12A"), ("C sharp minor", "12A"), ("CM", "8B"),
    ("  e   minor ", "9A"),
]  # fmt: skip
GARBAGE = ["", "garbage", "13A", "0A", "H minor", "C# dorian", "8C", "120", "A minor minor"]


@pytest.mark.parametrize(("spelling", "expected"), SPELLINGS)
def test_to_camelot_parses_spellings(
    db_connection: Connection, spelling: str, expected: str
) -> None:
    """Camelot, Open Key and musical spellings (♯/♭ too) map to the Camelot key."""
    assert scalar(db_connection, "SELECT to_camelot(:v)", v=spelling) == expected


@pytest.mark.parametrize("value", GARBAGE)
def test_to_camelot_returns_null_for_garbage(db_connection: Connection, value: str) -> None:
    """Unparseable input yields NULL, never an error."""
    assert scalar(db_connection, "SELECT to_camelot(:v)", v=value) is None
    assert scalar(db_connection, "SELECT calculate_compatible_keys(:v)", v=value) is None


@pytest.mark.parametrize("number", range(1, 13))
def test_to_camelot_matches_reference_wheel(db_connection: Connection, number: int) -> None:
    """Every musical key of the reference wheel maps to its Camelot number, both modes."""
    minor, major = WHEEL[number]
    assert scalar(db_connection, "SELECT to_camelot(:v)", v=minor) == f"{number}A"
    assert scalar(db_connection, "SELECT to_camelot(:v)", v=major) == f"{number}B"


@pytest.mark.parametrize("key", [f"{n}{letter}" for n in range(1, 13) for letter in "AB"])
def test_compatible_keys_all_24(db_connection: Connection, key: str) -> None:
    """[same, -1, +1, relative] with 12<->1 wrap-around, for all 24 keys."""
    n, letter = int(key[:-1]), key[-1]
    other = "B" if letter == "A" else "A"
    expected = [key, f"{(n - 2) % 12 + 1}{letter}", f"{n % 12 + 1}{letter}", f"{n}{other}"]
    assert scalar(db_connection, "SELECT calculate_compatible_keys(:k)", k=key) == expected


def test_compatible_keys_accept_any_spelling(db_connection: Connection) -> None:
    """'A minor' and '1m' give the same neighbours as '8A'."""
    got = {
        tuple(scalar(db_connection, "SELECT calculate_compatible_keys(:k)", k=k))
        for k in ("A minor", "1m", "8A")
    }
    assert got == {("8A", "7A", "9A", "8B")}


def test_enrichment_completeness_counts_eight_fields(db_connection: Connection) -> None:
    """Completeness is the fraction of the 8 fields present (empty genre does not count)."""
    sid = insert_silver_track(
        db_connection, "A", "T", spotify_id="sp1", bpm=124, key="8A", genre=[]
    )
    got = scalar(
        db_connection,
        "SELECT calculate_enrichment_completeness(s.*) FROM silver_enriched_tracks s WHERE id = :i",
        i=sid,
    )
    assert got == Decimal("0.38")  # 3 of 8 = 0.375 -> numeric(3,2)


def test_legacy_quality_score_bounds(db_connection: Connection) -> None:
    """Full legacy rows score 1.0, garbage 0, never outside [0, 1] and never an error."""
    full = scalar(
        db_connection,
        """SELECT calculate_legacy_quality_score('{"artist":"A","title":"T","bpm":"128",
        "key":"Am","genre":"house"}'::jsonb)""",
    )
    bad = scalar(
        db_connection,
        """SELECT calculate_legacy_quality_score('{"bpm":"fast","key":"?"}'::jsonb)""",
    )
    assert full == Decimal("1.00")
    assert bad == Decimal("0.00")
    assert scalar(db_connection, "SELECT calculate_legacy_quality_score('[]'::jsonb)") == 0


def _priority(conn: Connection, sql: str) -> list[tuple[int, str, Decimal]]:
    return [(r[0], r[1], r[2]) for r in conn.execute(text(sql))]


def test_get_provider_priority_seed_example(db_connection: Connection) -> None:
    """The seed's example returns exactly beatport/spotify/acousticbrainz."""
    rows = _priority(db_connection, "SELECT * FROM get_provider_priority('bpm', ARRAY['mixesdb'])")
    assert rows == [
        (1, "beatport", Decimal("0.98")),
        (2, "spotify", Decimal("0.85")),
        (3, "acousticbrainz", Decimal("0.75")),
    ]


def test_get_provider_priority_null_exclusions_is_full_order(db_connection: Connection) -> None:
    """A NULL exclusion list means exclude nothing (the original returned zero rows)."""
    rows = _priority(db_connection, "SELECT * FROM get_provider_priority('bpm', NULL)")
    assert [r[1] for r in rows] == ["beatport", "spotify", "acousticbrainz", "mixesdb"]
    assert len(_priority(db_connection, "SELECT * FROM get_provider_priority('bpm')")) == 4


def test_get_provider_priority_skips_disabled_and_down(db_connection: Connection) -> None:
    """Disabled providers and providers whose health is 'down' drop out; degraded stays."""
    db_connection.execute(
        text(
            "UPDATE enrichment_providers SET enabled = FALSE WHERE provider_name = 'beatport';"
            "UPDATE enrichment_providers SET health_status = 'down'"
            " WHERE provider_name = 'spotify';"
            "UPDATE enrichment_providers SET health_status = 'degraded'"
            " WHERE provider_name = 'mixesdb';"
        )
    )
    rows = _priority(db_connection, "SELECT * FROM get_provider_priority('bpm')")
    assert [r[1] for r in rows] == ["acousticbrainz", "mixesdb"]


def test_extra_providers_registered_outside_waterfall(db_connection: Connection) -> None:
    """deezer, getsongbpm and tidal are known, enabled APIs in no waterfall slot."""
    rows = db_connection.execute(
        text(
            "SELECT provider_name, provider_type, enabled FROM enrichment_providers"
            " WHERE provider_name IN ('deezer', 'getsongbpm', 'tidal') ORDER BY 1"
        )
    ).all()
    assert [tuple(r) for r in rows] == [
        ("deezer", "api", True),
        ("getsongbpm", "api", True),
        ("tidal", "api", True),
    ]
    in_slots = scalar(
        db_connection,
        "SELECT count(*) FROM metadata_enrichment_config WHERE ARRAY['deezer','getsongbpm',"
        "'tidal'] && ARRAY[priority_1_provider, priority_2_provider, priority_3_provider,"
        " priority_4_provider]",
    )
    assert in_slots == 0


def test_pipeline_run_functions(db_connection: Connection) -> None:
    """start/log/complete record a run with its config snapshot and a transformation."""
    run = scalar(db_connection, "SELECT start_pipeline_run('incremental', 'scheduler')")
    tid = scalar(
        db_connection,
        "SELECT log_transformation(:r, 'enrichment', 'bpm', 'beatport',"
        " input_value => 'null'::jsonb, output_value => '128'::jsonb, success => TRUE,"
        " confidence => 0.98)",
        r=run,
    )
    db_connection.execute(text("SELECT complete_pipeline_run(:r)"), {"r": run})
    row = db_connection.execute(
        text(
            "SELECT run_status, waterfall_config_snapshot ? 'bpm', duration_seconds IS NOT NULL"
            " FROM enrichment_pipeline_runs WHERE id = :r"
        ),
        {"r": run},
    ).one()
    assert tuple(row) == ("completed", True, True)
    conf = scalar(
        db_connection,
        "SELECT provider_confidence FROM enrichment_transformations WHERE id = :t",
        t=tid,
    )
    assert conf == Decimal("0.98")


def test_update_field_provenance_builds_chain(db_connection: Connection) -> None:
    """update_field_provenance upserts one row per (track, field) and appends the chain."""
    sid = insert_silver_track(db_connection, "A", "T")
    run = scalar(db_connection, "SELECT start_pipeline_run('manual', 'test')")
    ids = [
        scalar(
            db_connection,
            "SELECT log_transformation(:r, 'merge', 'bpm', :p, NULL, CAST(:v AS jsonb), TRUE,"
            " 0.9, silver_id => :s)",
            r=run,
            p=p,
            v=v,
            s=sid,
        )
        for p, v in (("spotify", "127"), ("beatport", "128"))
    ]
    for tid in ids:
        db_connection.execute(
            text("SELECT update_field_provenance(:s, 'bpm', :t)"), {"s": sid, "t": tid}
        )
    row = db_connection.execute(
        text(
            "SELECT transformation_chain, current_provider, current_value, total_transformations"
            " FROM field_provenance WHERE silver_track_id = :s"
        ),
        {"s": sid},
    ).one()
    assert list(row[0]) == ids
    assert (row[1], row[2], row[3]) == ("beatport", 128, 2)
