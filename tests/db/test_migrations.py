"""The SQL files apply with plain psql (one by one and concatenated), re-run, and roll back
to exactly the catalogue they started from."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from db.migrate import downgrade, sql_file, upgrade
from tests.conftest import create_test_database, drop_test_database, libpq_url

pytestmark = [pytest.mark.db, pytest.mark.slow]

NUMBERS = [1, 2, 3, 4, 5, 6, 7, 8, 12, 17]
# Every file re-applies over the full schema except 003: since 007 its harmonic recommendations
# are a plain view, and 003's CREATE INDEX on the old materialised view fails (see
# test_psql_003_over_007_stops_and_changes_nothing).
REAPPLICABLE = [n for n in NUMBERS if n != 3]
CATALOGUE = """
SELECT 'class', relname || ':' || relkind::text FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace WHERE nspname = 'public'
UNION ALL
SELECT 'proc', proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' FROM pg_proc p
  JOIN pg_namespace n ON n.oid = p.pronamespace WHERE nspname = 'public'
UNION ALL
SELECT 'type', typname FROM pg_type t
  JOIN pg_namespace n ON n.oid = t.typnamespace WHERE nspname = 'public'
UNION ALL
SELECT 'trigger', tgname FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace WHERE nspname = 'public'
UNION ALL
SELECT 'procdef', pg_get_functiondef(p.oid) FROM pg_proc p
  JOIN pg_namespace n ON n.oid = p.pronamespace WHERE nspname = 'public' AND prokind = 'f'
UNION ALL
SELECT 'viewdef', relname || ':' || relkind::text || ':' || pg_get_viewdef(c.oid) FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace WHERE nspname = 'public' AND relkind IN ('v', 'm')
UNION ALL
SELECT 'indexdef', indexname || ':' || indexdef FROM pg_indexes WHERE schemaname = 'public'
ORDER BY 1, 2
"""


@pytest.fixture
def empty_db(postgres_available: None) -> Iterator[str]:
    """A fresh, empty database (SQLAlchemy URL), dropped afterwards."""
    url = create_test_database("sn_mig")
    try:
        yield url
    finally:
        drop_test_database(url)


def _run_psql(url: str, path: Path) -> subprocess.CompletedProcess[str]:
    psql = shutil.which("psql")
    if psql is None:
        pytest.skip("psql is not installed")
    return subprocess.run(
        [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", libpq_url(url), "-f", str(path)],
        capture_output=True,
        text=True,
    )


def _psql(url: str, path: Path) -> None:
    result = _run_psql(url, path)
    assert result.returncode == 0, result.stderr


def _catalogue(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(libpq_url(url)) as conn:
        return [(r[0], r[1]) for r in conn.execute(CATALOGUE)]


def _bpm_order(url: str) -> list[str]:
    with psycopg.connect(libpq_url(url)) as conn:
        return [r[1] for r in conn.execute("SELECT * FROM get_provider_priority('bpm')")]


def test_psql_one_by_one_twice_then_down(empty_db: str) -> None:
    """Method 1: each up file with psql twice in a row (re-runnable), then the re-applicable
    files once more over the full schema; downs (each twice) in reverse leave nothing."""
    before = _catalogue(empty_db)
    for n in NUMBERS:
        _psql(empty_db, sql_file(n, "up"))
        _psql(empty_db, sql_file(n, "up"))
    head = _catalogue(empty_db)
    for n in REAPPLICABLE:
        _psql(empty_db, sql_file(n, "up"))
    assert _catalogue(empty_db) == head
    assert _bpm_order(empty_db) == ["beatport", "spotify", "acousticbrainz", "mixesdb"]
    for n in reversed(NUMBERS):
        _psql(empty_db, sql_file(n, "down"))
        _psql(empty_db, sql_file(n, "down"))
    assert _catalogue(empty_db) == before
    for n in NUMBERS:  # and up again works after a full rollback
        _psql(empty_db, sql_file(n, "up"))
    assert len(_bpm_order(empty_db)) == 4


def test_psql_concatenated(empty_db: str, tmp_path: Path) -> None:
    """Method 3: `cat *_up.sql` in name order applies in one psql run; the concatenated
    re-applicable files apply again over it."""
    combined = tmp_path / "medallion_all.sql"
    combined.write_text("".join(sql_file(n, "up").read_text() for n in NUMBERS))
    _psql(empty_db, combined)
    again = tmp_path / "medallion_again.sql"
    again.write_text("".join(sql_file(n, "up").read_text() for n in REAPPLICABLE))
    _psql(empty_db, again)
    assert _bpm_order(empty_db)[0] == "beatport"


def test_psql_003_over_007_stops_and_changes_nothing(empty_db: str) -> None:
    """Re-running 003 after 007 fails at its CREATE INDEX on the (now plain) harmonic view and,
    with ON_ERROR_STOP, before its CREATE OR REPLACE of the refresh function: nothing changes."""
    for n in NUMBERS:
        _psql(empty_db, sql_file(n, "up"))
    head = _catalogue(empty_db)
    result = _run_psql(empty_db, sql_file(3, "up"))
    assert result.returncode != 0
    assert 'cannot create index on relation "gold_harmonic_mixing_recommendations"' in (
        result.stderr
    )
    assert _catalogue(empty_db) == head
    _psql(empty_db, sql_file(7, "down"))  # the documented way back: 007 down, then 003 applies
    _psql(empty_db, sql_file(3, "up"))
    _psql(empty_db, sql_file(7, "up"))
    assert _catalogue(empty_db) == head


def test_alembic_round_trip_restores_catalogue(empty_db: str) -> None:
    """Alembic upgrade head / downgrade base leaves only alembic_version; re-upgrade works."""
    before = _catalogue(empty_db)
    upgrade(empty_db)
    downgrade(empty_db)
    after = [
        entry
        for entry in _catalogue(empty_db)
        if not entry[1].startswith(("alembic_version", "_alembic_version"))
    ]
    assert after == before
    upgrade(empty_db)
    assert _bpm_order(empty_db)[:2] == ["beatport", "spotify"]


def _harmonic_relkind(url: str) -> str:
    with psycopg.connect(libpq_url(url)) as conn:
        row = conn.execute(
            "SELECT relkind::text FROM pg_class"
            " WHERE oid = to_regclass('gold_harmonic_mixing_recommendations')"
        ).fetchone()
    assert row is not None
    return str(row[0])


def test_alembic_007_down_restores_the_materialised_view(empty_db: str) -> None:
    """0007 makes the harmonic recommendations a plain view; downgrading to 0006 restores
    exactly 006's catalogue (materialised view, its indexes, definitions, refresh function)."""
    upgrade(empty_db, "0006")
    at_006 = _catalogue(empty_db)
    assert _harmonic_relkind(empty_db) == "m"
    upgrade(empty_db)
    assert _harmonic_relkind(empty_db) == "v"
    downgrade(empty_db, "0006")
    assert _catalogue(empty_db) == at_006
    upgrade(empty_db)
    assert _harmonic_relkind(empty_db) == "v"


def test_022_moves_the_sightings_array_into_rows_and_back(empty_db: str) -> None:
    """022 turns each track's ``additional_bronze_ids`` into ``silver_track_sightings`` rows
    (the primary ``bronze_id`` stays on the track), re-runs without change, and its down puts
    the same ids back in the array, restoring 021's catalogue."""
    upgrade(empty_db, "0021")
    at_021 = _catalogue(empty_db)
    extra = ["00000000-0000-4000-8000-00000000000" + str(n) for n in (1, 2, 3)]
    with psycopg.connect(libpq_url(empty_db), autocommit=True) as conn:
        track = conn.execute(
            "INSERT INTO silver_enriched_tracks (artist_name, track_title, additional_bronze_ids)"
            " VALUES ('Fred again..', 'Delilah (pull me out of this)', %s::uuid[]) RETURNING id",
            (extra,),
        ).fetchone()
        bare = conn.execute(
            "INSERT INTO silver_enriched_tracks (artist_name, track_title)"
            " VALUES ('Anyma', 'Hypnotized') RETURNING id"
        ).fetchone()
    assert track is not None and bare is not None
    upgrade(empty_db)
    _psql(empty_db, sql_file(22, "up"))  # re-runnable: the column is gone, nothing moves twice
    with psycopg.connect(libpq_url(empty_db)) as conn:
        rows = conn.execute(
            "SELECT bronze_id::text, silver_id FROM silver_track_sightings ORDER BY 1"
        ).fetchall()
        column = conn.execute(
            "SELECT count(*) FROM information_schema.columns"
            " WHERE column_name = 'additional_bronze_ids'"
        ).fetchone()
    assert rows == [(b, track[0]) for b in extra] and column == (0,)
    downgrade(empty_db, "0021")
    assert _catalogue(empty_db) == at_021
    with psycopg.connect(libpq_url(empty_db)) as conn:
        arrays = dict(
            conn.execute(
                "SELECT id, additional_bronze_ids::text[] FROM silver_enriched_tracks"
            ).fetchall()
        )
    assert arrays == {track[0]: extra, bare[0]: []}
