"""Only complete setlists are sent to ``merge_playlist`` (issue 17).

A merge batch touches many setlists, each of whose tracks is merged by other batches; sending
``merge_playlist`` for every setlist a batch touched made about 20 messages per setlist that
found it incomplete (bench/sightings, 20k rows: most of the gold queue). ``complete_playlists``
asks the same question ``merge_playlist`` asks, for many setlists in one query; an entry a
setlist lists as ``ID - ID`` has a job too (merged without lookups), so it never blocks.
"""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.orm import Session

from pipeline.enrich import create_jobs
from pipeline.ingest import ingest_messages
from pipeline.merge import complete_playlists, merge_playlist
from pipeline.runs import start_run


def _setlist(session: Session, tag: str) -> tuple[str, str, list[str]]:
    result = ingest_messages(
        session,
        [
            {
                "kind": "playlist",
                "source": "t-complete",
                "source_url": f"https://example.test/complete/{tag}",
                "scraper_version": "1",
                "playlist_name": f"Complete {tag}",
                "artist_name": "DJ Complete",
                "raw_json": {
                    "tracks": [
                        {"position": 1, "artist": f"Artist {tag}", "title": "One"},
                        {"position": 2, "artist": "ID", "title": "ID"},
                        {"position": 3, "artist": f"Artist {tag}", "title": "Three"},
                    ]
                },
            }
        ],
    )
    run_id = str(start_run(session, "incremental", "t-complete"))
    create_jobs(session, run_id, result.track_ids)
    playlist = session.execute(
        text("SELECT playlist_id::text FROM bronze_scraped_tracks WHERE id = :t"),
        {"t": result.track_ids[0]},
    ).scalar_one()
    return run_id, playlist, [str(t) for t in result.track_ids]


def _merged(session: Session, run_id: str, bronze_ids: list[str], status: str = "merged") -> None:
    session.execute(
        text(
            "UPDATE enrichment_jobs SET status = :s, merged_at = now() WHERE run_id = :r "
            "AND bronze_track_id = ANY(CAST(:b AS uuid[]))"
        ),
        {"s": status, "r": run_id, "b": bronze_ids},
    )


def test_a_setlist_is_complete_once_every_track_is_merged_or_failed(db_session: Session) -> None:
    run_a, setlist_a, tracks_a = _setlist(db_session, uuid.uuid4().hex[:8])
    run_b, setlist_b, tracks_b = _setlist(db_session, uuid.uuid4().hex[:8])
    both = [setlist_a, setlist_b]
    assert len(tracks_a) == 3, "the ID - ID entry has a bronze row (and a job) too"
    assert complete_playlists(db_session, both) == []

    _merged(db_session, run_a, tracks_a[:2])
    assert complete_playlists(db_session, both) == [], "one track of A still open"
    assert merge_playlist(db_session, setlist_a) is None, "merge_playlist agrees"

    _merged(db_session, run_a, tracks_a[2:], status="failed")  # a failed merge completes too
    _merged(db_session, run_b, tracks_b)
    assert complete_playlists(db_session, [*both, setlist_a]) == sorted(both)
    assert merge_playlist(db_session, setlist_a) is not None, "merge_playlist agrees"
    assert complete_playlists(db_session, []) == []
