"""Setlists as scrapers send them, on real PostgreSQL: one bad entry never costs its set, every
entry reaches silver membership as what it is, and gold's harmonic flow is the DJ's count.

Entry shapes are 1001Tracklists' (blank and ``ID - ID`` rows, ``w/`` slots, ``[00:05:00]`` cue
times; see tests/unit/test_tracklist.py for where each comes from). Names are real Beatport
chart names (``/work/shared/data``); keys are set by each test.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from pipeline.enrich import create_jobs
from pipeline.gold import merge_playlist, upsert_playlist_analytics
from pipeline.ingest import ingest_messages
from pipeline.merge import merge_batch
from pipeline.runs import start_run
from tests.db._helpers import insert_silver_track

pytestmark = pytest.mark.db


def _setlist(tracks: list[Any], name: str | None = None) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    return {
        "kind": "playlist",
        "source": "1001tracklists",
        "source_url": f"https://www.1001tracklists.com/tracklist/{tag}",
        "scraper_version": "t-setlists",
        "playlist_name": name or f"Set {tag}",
        "artist_name": "Test DJ",
        "raw_json": {"tracks": tracks},
    }


def _flags(session: Session, playlist_id: Any) -> list[tuple[Any, ...]]:
    return [
        tuple(r)
        for r in session.execute(
            text(
                "SELECT entry_index, position, reason, bronze_track_id IS NOT NULL "
                "FROM playlist_entry_flags WHERE bronze_playlist_id = :p "
                "ORDER BY entry_index NULLS FIRST, reason"
            ),
            {"p": playlist_id},
        )
    ]


def test_one_bad_entry_never_quarantines_its_set(db_session: Session) -> None:
    """A set with a null entry, a string entry, a 10k-character name, a control-character name,
    an unreadable cue time and an ID row: nothing quarantined, the set and every storable entry
    in bronze exactly as sent, each bad entry flagged with its reason, ID rows unflagged."""
    sent: list[Any] = [
        {"position": 1, "artist": "Kevin de Vries & Jast", "title": "Born Like That"},
        None,
        "Korolova & JOA (US) - My Mind",
        {"position": 4, "artist": "A" * 10_000, "title": "Deeplow"},
        {"position": 5, "artist": "Argy\x07 & John Cala", "title": "BOOM"},
        {"position": 6, "artist": "YOTTO", "title": "Call Me Back", "cue_time": "??:??"},
        {"position": 7, "artist": "ID", "title": "ID"},
    ]
    result = ingest_messages(db_session, [_setlist(sent)])
    assert result.quarantined == 0 and len(result.playlist_ids) == 1
    pid = result.playlist_ids[0]
    rows = db_session.execute(
        text(
            "SELECT position, raw_json, artist_name, track_title FROM bronze_scraped_tracks "
            "WHERE playlist_id = :p ORDER BY position"
        ),
        {"p": pid},
    ).all()
    # The null entry has no track row (it lives in the playlist row's raw_json); all others do.
    assert [r.raw_json for r in rows] == [sent[0], *sent[2:]]
    assert [r.position for r in rows] == [1, 3, 4, 5, 6, 7]
    names = {r.position: (r.artist_name, r.track_title) for r in rows}
    assert names[4] == (None, "Deeplow")  # unusable name: not looked up
    assert names[5] == ("Argy & John Cala", "BOOM")  # cleaned for lookups
    assert names[7] == (None, None)
    stored = db_session.execute(
        text("SELECT raw_json FROM bronze_scraped_playlists WHERE id = :p"), {"p": pid}
    ).scalar_one()
    assert stored == {"tracks": sent}
    assert _flags(db_session, pid) == [
        (1, 2, "entry is not a JSON object (null)", False),
        (2, 3, "entry is not a JSON object (string)", True),
        (3, 4, "artist is 10000 characters, over 1000", True),
        (4, 5, "artist contains control characters (removed for lookups)", True),
        (5, 6, "cue_time '??:??' is not mm:ss, h:mm:ss or seconds", True),
    ]


def _merge_all(
    session: Session,
    bronze_playlist_id: Any,
    keys: dict[str, str | None],
    failed: frozenset[str] = frozenset(),
) -> str:
    """Finish every job of the set: unidentified ones through merge_batch (no lookups), named
    ones as merged to a silver track with the given key (what a lookup round would leave), or
    as failed for titles in ``failed``."""
    run = str(start_run(session, "manual", "test-setlists"))
    bronze = session.execute(
        text(
            "SELECT id, artist_name, track_title FROM bronze_scraped_tracks "
            "WHERE playlist_id = :p"
        ),
        {"p": bronze_playlist_id},
    ).all()
    nxt = create_jobs(session, run, [b.id for b in bronze])
    merge_batch(session, nxt.merges)
    for b in bronze:
        if b.track_title in failed:
            session.execute(
                text(
                    "UPDATE enrichment_jobs SET status = 'failed', last_error = 'test' "
                    "WHERE bronze_track_id = :b AND run_id = :r"
                ),
                {"b": b.id, "r": run},
            )
        elif b.artist_name and b.track_title:
            silver = insert_silver_track(
                session.connection(),
                b.artist_name,
                b.track_title,
                key=keys.get(b.track_title),
                validation_status="valid",
            )
            session.execute(
                text(
                    "UPDATE enrichment_jobs SET status = 'merged', silver_track_id = :s, "
                    "merged_at = now() WHERE bronze_track_id = :b AND run_id = :r"
                ),
                {"s": silver, "b": b.id, "r": run},
            )
    playlist = merge_playlist(session, str(bronze_playlist_id))
    assert playlist is not None
    upsert_playlist_analytics(session, [playlist])
    return playlist


def test_every_entry_broken_is_a_stored_setlist_without_tracks(db_session: Session) -> None:
    """Null, blank, ID - ID and a 10k-character name: the set is stored and flagged as a whole,
    silver holds a playlist with four unidentified positions (needs_review), gold has it with
    identification rate 0 and no harmonic flow."""
    sent: list[Any] = [
        None,
        {"position": 2, "artist": "", "title": ""},
        {"position": 3, "artist": "ID", "title": "ID - ID"},
        {"position": 4, "artist": "B" * 10_000, "title": "C" * 10_000},
    ]
    result = ingest_messages(db_session, [_setlist(sent)])
    pid = result.playlist_ids[0]
    assert result.quarantined == 0
    flags = _flags(db_session, pid)
    assert flags[0] == (None, None, "no identified entry among 4: stored as a setlist without "
                        "tracks", False)
    silver = _merge_all(db_session, pid, {})
    p = db_session.execute(
        text(
            "SELECT track_count, validation_status, data_quality_score, enrichment_metadata "
            "FROM silver_enriched_playlists WHERE id = :p"
        ),
        {"p": silver},
    ).one()
    assert (p.track_count, p.validation_status, float(p.data_quality_score)) == (
        4,
        "needs_review",
        0.0,
    )
    assert p.enrichment_metadata["unidentified"] == 4 and p.enrichment_metadata["flagged"] == 2
    members = db_session.execute(
        text(
            "SELECT sequence, position, entry_status, track_id FROM silver_playlist_tracks "
            "WHERE playlist_id = :p ORDER BY sequence"
        ),
        {"p": silver},
    ).all()
    assert [tuple(m) for m in members] == [
        (1, 1, "unidentified", None),
        (2, 2, "unidentified", None),
        (3, 3, "unidentified", None),
        (4, 4, "unidentified", None),
    ]
    gold = db_session.execute(
        text(
            "SELECT track_identification_rate, harmonic_flow_score, harmonic_flow_graded, "
            "key_changes, harmonic_transitions FROM gold_playlist_analytics "
            "WHERE silver_playlist_id = :p"
        ),
        {"p": silver},
    ).one()
    assert tuple(gold) == (0, None, None, 0, 0)


def test_membership_stores_each_entry_as_what_it_is(db_session: Session) -> None:
    """w/ slots, a repeated position, a mashup, ID rows and cue times in three spellings reach
    silver membership in the order sent, and gold's flow never counts across the ID row."""
    sent: list[Any] = [
        {"position": "01", "artist": "Kevin de Vries & Jast", "title": "Born Like That"},
        {"position": 2, "artist": "Meloko & Konvex (FR) & Garla", "title": "If U Ever",
         "cue_time": "[00:04:30]"},
        {"position": 3, "artist": "", "title": "", "cue_time": "09:00"},
        {"position": 4, "artist": "Korolova & JOA (US)", "title": "My Mind", "cue_time": 795},
        {"position": "w/", "artist": "YOTTO", "title": "Call Me Back"},
        {"position": 5, "artist": "John Summit vs. RÜFÜS DU SOL",
         "title": "Stay With Me vs. In the Moment", "cue_time": "1:02:00"},
        {"position": 6, "artist": "Argy & John Cala", "title": "BOOM"},
        {"position": 6, "artist": "Argy & PollyAnna & Meduza", "title": "Melodia"},
        {"position": 7, "artist": "Rafael Cerato", "title": "The Castle"},
    ]
    result = ingest_messages(db_session, [_setlist(sent)])
    pid = result.playlist_ids[0]
    keys = {
        "Born Like That": "3A",
        "If U Ever": "3B",  # relative major: compatible
        "My Mind": "11A",
        "Call Me Back": "9A",  # played over My Mind: no transition of its own
        "Stay With Me vs. In the Moment": "11A",
        "BOOM": "1A",  # 11A -> 1A: two steps, a clash
        "Melodia": "7B",
        "The Castle": None,  # keyless: breaks the chain
    }
    silver = _merge_all(db_session, pid, keys)
    members = db_session.execute(
        text(
            "SELECT pt.sequence, pt.position, pt.entry_status, pt.slot_role, pt.mashup, "
            "pt.mashup_parts, pt.cue_time_ms, pt.cue_time_raw, t.track_title, "
            "b.raw_json AS bronze_raw "
            "FROM silver_playlist_tracks pt LEFT JOIN silver_enriched_tracks t "
            "ON t.id = pt.track_id LEFT JOIN bronze_scraped_tracks b ON b.id = pt.bronze_track_id "
            "WHERE pt.playlist_id = :p ORDER BY pt.sequence"
        ),
        {"p": silver},
    ).all()
    assert [m.bronze_raw for m in members] == sent  # each row points at its entry as sent
    assert [(m.sequence, m.position, m.entry_status, m.slot_role) for m in members] == [
        (1, 1, "identified", "main"),
        (2, 2, "identified", "main"),
        (3, 3, "unidentified", "main"),
        (4, 4, "identified", "main"),
        (5, 4, "identified", "with"),
        (6, 5, "identified", "main"),
        (7, 6, "identified", "main"),
        (8, 6, "identified", "with"),
        (9, 7, "identified", "main"),
    ]
    assert [m.cue_time_ms for m in members] == [
        None, 270_000, 540_000, 795_000, None, 3_720_000, None, None, None
    ]
    assert members[1].cue_time_raw == "[00:04:30]" and members[3].cue_time_raw == "795"
    assert [m.mashup for m in members] == [False] * 5 + [True] + [False] * 3
    assert members[5].mashup_parts == [
        {"artist": "John Summit", "title": "Stay With Me"},
        {"artist": "RÜFÜS DU SOL", "title": "In the Moment"},
    ]
    gold = db_session.execute(
        text(
            "SELECT track_identification_rate, harmonic_flow_score, harmonic_flow_graded, "
            "key_changes, harmonic_transitions, compatible_transitions "
            "FROM gold_playlist_analytics WHERE silver_playlist_id = :p"
        ),
        {"p": silver},
    ).one()
    # Counted pairs: 1->2 (3A 3B, compatible), 4->5 (11A 11A, same), 5->6 (11A 1A, two steps:
    # graded 0.8). Not 2->3 or 3->4 (ID row), not 6->7 (keyless), nothing into or out of w/.
    assert float(gold.track_identification_rate) == round(8 / 9, 2)
    assert gold.harmonic_transitions == 3 and gold.compatible_transitions == 2
    assert float(gold.harmonic_flow_score) == 0.67
    assert float(gold.harmonic_flow_graded) == round((1 + 1 + 0.8) / 3, 2)
    assert gold.key_changes == 2


def test_redelivered_setlist_adds_no_flags(db_session: Session) -> None:
    """The same message twice: one playlist, one set of flags."""
    env = _setlist([{"position": 1, "artist": "A", "title": "B", "cue_time": "soon"}])
    first = ingest_messages(db_session, [env])
    again = ingest_messages(db_session, [json.loads(json.dumps(env))])
    assert again.duplicates == 1 and again.playlist_ids == []
    assert len(_flags(db_session, first.playlist_ids[0])) == 1


def test_rows_inserted_without_a_sequence_go_last(db_session: Session) -> None:
    """The design document's examples insert (playlist_id, track_id, position) only: each such
    row is appended after the playlist's last entry (012's trigger)."""
    conn = db_session.connection()
    playlist = conn.execute(
        text(
            "INSERT INTO silver_enriched_playlists (playlist_name, artist_name) "
            "VALUES ('seq', 'DJ') RETURNING id"
        )
    ).scalar_one()
    tracks = [insert_silver_track(conn, "Seq Artist", f"Seq {i}") for i in range(3)]
    conn.execute(
        text(
            "INSERT INTO silver_playlist_tracks (playlist_id, track_id, position, sequence) "
            "VALUES (:p, :t, 1, 5)"
        ),
        {"p": playlist, "t": tracks[0]},
    )
    for t in tracks[1:]:
        conn.execute(
            text(
                "INSERT INTO silver_playlist_tracks (playlist_id, track_id, position) "
                "VALUES (:p, :t, 2)"
            ),
            {"p": playlist, "t": t},
        )
    seqs = conn.execute(
        text("SELECT sequence FROM silver_playlist_tracks WHERE playlist_id = :p ORDER BY 1"),
        {"p": playlist},
    ).scalars()
    assert list(seqs) == [5, 6, 7]


def test_a_named_entry_whose_merge_failed_is_unresolved_and_breaks_the_chain(
    db_session: Session,
) -> None:
    """Three compatible keys around a track whose merge failed: the set still reaches silver
    (the failed entry 'unresolved', no track) and no transition is counted across it."""
    sent = [
        {"position": 1, "artist": "YOTTO", "title": "Call Me Back"},
        {"position": 2, "artist": "Tripolism", "title": "Swim"},
        {"position": 3, "artist": "Township Rebellion", "title": "Madeleine"},
    ]
    pid = ingest_messages(db_session, [_setlist(sent)]).playlist_ids[0]
    silver = _merge_all(
        db_session, pid, {"Call Me Back": "8A", "Madeleine": "8A"}, failed=frozenset({"Swim"})
    )
    statuses = db_session.execute(
        text(
            "SELECT entry_status, track_id IS NULL FROM silver_playlist_tracks "
            "WHERE playlist_id = :p ORDER BY sequence"
        ),
        {"p": silver},
    ).all()
    assert [tuple(r) for r in statuses] == [
        ("identified", False),
        ("unresolved", True),
        ("identified", False),
    ]
    gold = db_session.execute(
        text(
            "SELECT harmonic_transitions, harmonic_flow_score, track_identification_rate "
            "FROM gold_playlist_analytics WHERE silver_playlist_id = :p"
        ),
        {"p": silver},
    ).one()
    assert (gold.harmonic_transitions, gold.harmonic_flow_score) == (0, None)
    assert float(gold.track_identification_rate) == 0.67
