"""The ``songnodes`` CLI end to end, as a user runs it (subprocess, in-process worker)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def e2e_db(postgres_available: None) -> Iterator[tuple[str, Engine]]:
    """A database of its own: the demo writes real chart tracks that would otherwise merge with
    other tests' catalogue tracks in the shared run database."""
    from db.migrate import upgrade
    from tests.conftest import create_test_database, drop_test_database

    url = create_test_database("sn_e2e")
    engine = create_engine(url)
    try:
        upgrade(url)
        yield url, engine
    finally:
        engine.dispose()
        drop_test_database(url)


def _cli(args: list[str], db_url: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("CELERY_BROKER_URL", "REDIS_URL", "CELERY_RESULT_BACKEND")
    }
    env |= {"DATABASE_URL": db_url, "SONGNODES_LOG_FORMAT": "text", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_published_schema_matches_the_code() -> None:
    """docs/envelope.schema.json is what `songnodes schema` prints today."""
    from pipeline.envelope import envelope_json_schema

    published = json.loads((ROOT / "docs" / "envelope.schema.json").read_text())
    assert published == envelope_json_schema()


def test_ingest_file_with_bad_lines(e2e_db: tuple[str, Engine], tmp_path: Path) -> None:
    """`songnodes ingest --wait`: good lines reach silver, bad lines are quarantined, exit 0."""
    good = {
        "kind": "track",
        "source": "e2e-cli",
        "source_url": "https://example.test/e2e",
        "scraper_version": "1",
        "artist_name": "Flava D & Stush",
        "track_title": "Energy",
        "raw_json": {"e2e": True},
    }
    # Issue 15: a 5000-level line among them no longer loses the file; a raw CR between JSON
    # tokens is data (the line is one valid envelope); CRLF line ends are tolerated.
    deep = b'{"kind": "track", "raw_json": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    with_cr = json.dumps(good | {"raw_json": {"e2e": "cr"}}).replace(", ", ",\r ", 3).encode()
    lines = [
        json.dumps(good).encode(),
        b"{not json",
        b"\xff\xfe not utf-8",
        b"",
        deep,
        with_cr + b"\r",
        json.dumps(good | {"artist_name": None}).encode(),
    ]
    path = tmp_path / "backfill.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    db_url, engine = e2e_db
    result = _cli(["ingest", str(path), "--wait", "--timeout", "120"], db_url)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "quarantined: 4" in result.stderr
    with engine.connect() as conn:
        silver = conn.execute(
            text(
                "SELECT count(*) FROM silver_enriched_tracks s JOIN bronze_scraped_tracks b "
                "ON b.id = s.bronze_id WHERE b.source = 'e2e-cli'"
            )
        ).scalar_one()
        bronze = conn.execute(
            text("SELECT count(*) FROM bronze_scraped_tracks WHERE source = 'e2e-cli'")
        ).scalar_one()
        deep_kept = conn.execute(
            text("SELECT count(*) FROM ingest_quarantine WHERE raw_bytes = :b"), {"b": deep}
        ).scalar_one()
    assert silver == 1  # the CR line is the same recording: it joins the same silver row
    assert bronze == 2 and deep_kept == 1


def test_demo_small(e2e_db: tuple[str, Engine]) -> None:
    """`songnodes demo` (one chart track per genre, one setlist) reaches gold and summarises."""
    db_url, engine = e2e_db
    result = _cli(["demo", "--tracks-per-chart", "1", "--setlists", "1"], db_url)
    assert result.returncode == 0, result.stderr[-3000:]
    for expected in (
        "Medallion layers",
        "Silver quality",
        "Provider calls",
        "Setlists (gold)",
        "SIMULATED",
    ):
        assert expected in result.stderr, expected
    with engine.connect() as conn:
        gold = conn.execute(text("SELECT count(*) FROM gold_playlist_analytics")).scalar_one()
    assert gold >= 1
    first = re.search(r"(\d+) of (\d+) sightings asked no provider", result.stderr)
    assert first is not None, result.stderr[-3000:]
    assert int(first[1]) < int(first[2])  # a fresh database: new tracks were looked up

    # The same demo again on the same database: every record is already in bronze, so nothing
    # is ingested and no provider is asked; the summary says why instead of showing an
    # unexplained empty provider table.
    again = _cli(["demo", "--tracks-per-chart", "1", "--setlists", "1"], db_url)
    assert again.returncode == 0, again.stderr[-3000:]
    text_again = " ".join(again.stderr.split())
    assert "Nothing new: every record of this demo was already in bronze" in text_again
    assert "sandbox: 0 requests" in text_again
