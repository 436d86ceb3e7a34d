"""``songnodes ingest`` of setlists shaped as 1001Tracklists lists them, to silver and gold.

``tests/data/setlists_1001tl_shapes.jsonl``: a 25-entry set of real Beatport melodic house &
techno chart names (``/work/shared/data``, served with simulated values by the sandbox) written
the way 1001Tracklists lists a set: ``[00:04:30]`` cue times, then ``58:30``, ``1:03:00`` and
seconds, a blank ID row, ``ID``/``?``/``unknown`` rows, an ``Artist - ID`` row, ``w/`` slots in
the number column and as an artist prefix, a repeated position, two mashups and one unreadable
cue time; and a set whose every entry is broken (null, blank, ``ID - ID``, a 10k-character name,
control characters). Before issue 14 both sets were quarantined whole.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from tests.db.test_harmonic_flow import Entry, reference

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "setlists_1001tl_shapes.jsonl"
MAIN = "Melodic house & techno set, 1001Tracklists shapes (names real, set invented)"
BROKEN = "Every entry unidentified or broken (invented)"


@pytest.fixture(scope="module")
def setlist_db(postgres_available: None) -> Iterator[tuple[str, Engine]]:
    """A database of its own (chart names would merge with other tests' catalogue tracks)."""
    from db.migrate import upgrade
    from tests.conftest import create_test_database, drop_test_database

    url = create_test_database("sn_e2e_sets")
    engine = create_engine(url)
    try:
        upgrade(url)
        yield url, engine
    finally:
        engine.dispose()
        drop_test_database(url)


def _cli(args: list[str], db_url: str, extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("CELERY_BROKER_URL", "REDIS_URL", "CELERY_RESULT_BACKEND")
    }
    env |= extra | {"DATABASE_URL": db_url, "SONGNODES_LOG_FORMAT": "text", "COLUMNS": "250"}
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def ingested(setlist_db: tuple[str, Engine]) -> Iterator[tuple[str, Engine, dict[str, str]]]:
    from providers.registry import available_providers
    from providers.sandbox import start_in_thread

    url, engine = setlist_db
    with start_in_thread() as sandbox:
        env = dict(sandbox.env)
        for name in available_providers():
            env[f"SONGNODES_{name.upper()}_RATE_LIMIT_PER_SECOND"] = "500"
        done = _cli(["ingest", str(DATA), "--wait", "--timeout", "240"], url, env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "quarantined: 0" in done.stdout + done.stderr, done.stderr
        yield url, engine, env


def _members(engine: Engine, playlist: str) -> list[Any]:
    with engine.connect() as conn:
        return conn.execute(
            text("""
            SELECT pt.sequence, pt.position, pt.entry_status, pt.slot_role, pt.mashup,
                   pt.cue_time_ms, t.key, b.raw_json AS sent
            FROM silver_playlist_tracks pt
            JOIN silver_enriched_playlists p ON p.id = pt.playlist_id
            LEFT JOIN silver_enriched_tracks t ON t.id = pt.track_id
            LEFT JOIN bronze_scraped_tracks b ON b.id = pt.bronze_track_id
            WHERE p.playlist_name = :n ORDER BY pt.sequence"""),
            {"n": playlist},
        ).all()


def _gold(engine: Engine, playlist: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            text("""
            SELECT track_identification_rate, harmonic_flow_score, harmonic_flow_graded,
                   key_changes, harmonic_transitions, compatible_transitions
            FROM gold_playlist_analytics WHERE playlist_name = :n"""),
            {"n": playlist},
        ).one()


def test_every_entry_reaches_silver_as_what_it_is(
    ingested: tuple[str, Engine, dict[str, str]],
) -> None:
    """25 entries, 25 membership rows in the order sent, each pointing at its bronze entry as
    sent; the ID rows unidentified, w/ slots and the repeated position 'with', both mashups
    marked, cue times in milliseconds whatever their spelling (the unreadable one empty)."""
    _, engine, _ = ingested
    sent = json.loads(DATA.read_text(encoding="utf-8").splitlines()[0])["raw_json"]["tracks"]
    members = _members(engine, MAIN)
    assert [m.sent for m in members] == sent
    unidentified = {3, 7, 12, 18, 20}  # blank, ID, ?, unknown, Dino Lenny & John Digweed - ID
    assert {m.sequence for m in members if m.entry_status != "identified"} == unidentified
    assert all(m.entry_status == "unidentified" for m in members if m.sequence in unidentified)
    assert {m.sequence for m in members if m.slot_role == "with"} == {6, 15, 22}
    assert {m.sequence for m in members if m.mashup} == {10, 23}
    assert [m.position for m in members][:7] == [1, 2, 3, 4, 5, 5, 6]
    cues = {m.sequence: m.cue_time_ms for m in members}
    assert (cues[1], cues[2], cues[16], cues[17], cues[18], cues[24], cues[25]) == (
        None,
        270_000,
        3_510_000,
        3_780_000,
        3_810_000,
        None,
        5_400_000,
    )


def test_gold_flow_is_counted_between_adjacent_identified_positions(
    ingested: tuple[str, Engine, dict[str, str]],
) -> None:
    """Gold's harmonic flow, graded score and key changes equal the reference computed from
    silver's keys at each position; identification rate is 20 of 25."""
    _, engine, _ = ingested
    entries = [
        Entry(m.position, m.slot_role, m.entry_status, m.key) for m in _members(engine, MAIN)
    ]
    transitions, compatible, changes, flow, graded = reference(entries)
    gold = _gold(engine, MAIN)
    assert float(gold.track_identification_rate) == 0.8
    assert (gold.harmonic_transitions, gold.compatible_transitions, gold.key_changes) == (
        transitions,
        compatible,
        changes,
    )
    assert transitions > 0  # the set has counted pairs: the comparison is not vacuous
    assert float(gold.harmonic_flow_score) == flow
    assert float(gold.harmonic_flow_graded) == graded


def test_wait_returns_with_every_appearance_paid(
    ingested: tuple[str, Engine, dict[str, str]],
) -> None:
    """Track appearances and artist aggregates are paid debounced (migrations 019, 023):
    ``ingest --wait`` returns only once none is owed, and every gold track row counts the
    setlist entries silver holds for it."""
    _, engine, _ = ingested
    with engine.connect() as conn:
        owed = conn.execute(
            text("SELECT (SELECT count(*) FROM gold_artist_refresh_queue),"
                 " (SELECT count(*) FROM gold_track_refresh_queue)")
        ).one()  # fmt: skip
        rows = conn.execute(
            text("""
            SELECT g.playlist_appearances,
                   (SELECT count(*) FROM silver_playlist_tracks pt
                     WHERE pt.track_id = g.silver_track_id) AS entries
            FROM gold_track_analytics g""")
        ).all()
    assert tuple(owed) == (0, 0)
    assert rows and all(r.playlist_appearances == r.entries for r in rows)
    assert any(r.entries > 0 for r in rows)  # the sets' tracks are among them


def test_broken_set_is_stored_without_tracks_and_flagged(
    ingested: tuple[str, Engine, dict[str, str]],
) -> None:
    """The all-broken set: silver playlist with five unidentified positions (needs_review),
    gold identification 0; `songnodes quarantine` lists the flags and `--show` prints an entry
    as sent."""
    url, engine, env = ingested
    members = _members(engine, BROKEN)
    assert [m.entry_status for m in members] == ["unidentified"] * 5
    with engine.connect() as conn:
        status = conn.execute(
            text(
                "SELECT validation_status FROM silver_enriched_playlists "
                "WHERE playlist_name = :n"
            ),
            {"n": BROKEN},
        ).scalar_one()
        long_flag = conn.execute(
            text("SELECT id FROM playlist_entry_flags WHERE reason LIKE 'artist is 10000%'")
        ).scalar_one()
    assert status == "needs_review"
    assert float(_gold(engine, BROKEN).track_identification_rate) == 0
    listing = _cli(["quarantine"], url, env)
    assert listing.returncode == 0, listing.stderr
    out = listing.stdout + listing.stderr  # rich tables go to the console's stream
    assert "flagged setlist entries (7;" in out
    for reason in (
        "no identified entry among 5",
        "entry is not a JSON object (null)",
        "cue_time '??:??' is not mm:ss",
    ):
        assert reason in out, out
    shown = _cli(["quarantine", "--show", str(long_flag)], url, env)
    assert shown.returncode == 0, shown.stderr
    header, body = shown.stdout.split("\n", 1)
    assert header == f"{BROKEN}, entry #4: artist is 10000 characters, over 1000"
    assert json.loads(body) == {"position": 4, "artist": "X" * 10_000, "title": "Long"}
