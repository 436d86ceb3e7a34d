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

NUMBERS = [1, 2, 3, 4, 5]
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


def _psql(url: str, path: Path) -> None:
    psql = shutil.which("psql")
    if psql is None:
        pytest.skip("psql is not installed")
    result = subprocess.run(
        [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", libpq_url(url), "-f", str(path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def _catalogue(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(libpq_url(url)) as conn:
        return [(r[0], r[1]) for r in conn.execute(CATALOGUE)]


def _bpm_order(url: str) -> list[str]:
    with psycopg.connect(libpq_url(url)) as conn:
        return [r[1] for r in conn.execute("SELECT * FROM get_provider_priority('bpm')")]


def test_psql_one_by_one_twice_then_down(empty_db: str) -> None:
    """Method 1: each up file with psql twice (re-runnable); downs in reverse leave nothing."""
    before = _catalogue(empty_db)
    for _ in range(2):
        for n in NUMBERS:
            _psql(empty_db, sql_file(n, "up"))
    assert _bpm_order(empty_db) == ["beatport", "spotify", "acousticbrainz", "mixesdb"]
    for n in reversed(NUMBERS):
        _psql(empty_db, sql_file(n, "down"))
    assert _catalogue(empty_db) == before
    for n in NUMBERS:  # and up again works after a full rollback
        _psql(empty_db, sql_file(n, "up"))
    assert len(_bpm_order(empty_db)) == 4


def test_psql_concatenated(empty_db: str, tmp_path: Path) -> None:
    """Method 3: `cat *_up.sql` in name order applies in one psql run, twice."""
    combined = tmp_path / "medallion_all.sql"
    combined.write_text("".join(sql_file(n, "up").read_text() for n in NUMBERS))
    _psql(empty_db, combined)
    _psql(empty_db, combined)
    assert _bpm_order(empty_db)[0] == "beatport"


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
