"""Re-deriving lost hand-offs from PostgreSQL (pipeline/recovery.py, pipeline/maintenance.py).

Each test builds the state a lost message leaves behind (its work committed, its hand-off never
delivered), shows the reconciler finds it, then does the hand-off and shows it is no longer
reported. All on the real PostgreSQL, inside the test's rolled-back transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from pipeline import maintenance, recovery
from pipeline.enrich import create_jobs
from pipeline.ingest import ingest_messages
from pipeline.runs import start_run


def _track(session: Session, tag: str) -> str:
    result = ingest_messages(
        session,
        [
            {
                "kind": "track",
                "source": "t-recovery",
                "source_url": f"https://example.test/{tag}",
                "scraper_version": "1",
                "artist_name": f"Recovery Artist {tag}",
                "track_title": f"Recovery Title {tag}",
                "raw_json": {"tag": tag},
            }
        ],
    )
    return str(result.track_ids[0])


def _job(session: Session, tag: str) -> tuple[str, str, dict[str, list[str]]]:
    bronze = _track(session, tag)
    run_id = str(start_run(session, "incremental", "t-recovery"))
    nxt = create_jobs(session, run_id, [bronze])
    assert nxt.lookups, "the plan asks at least one provider"
    job_id = next(iter(nxt.lookups.values()))[0]
    return run_id, job_id, nxt.lookups


def test_a_leased_lookup_is_not_leased_to_another_message(db_session: Session) -> None:
    """A duplicate message (another task id) gets none of the lookups a live lease holds; the
    same task id (redelivery, retry) takes its lease over; an expired lease is free."""
    _, job_id, lookups = _job(db_session, "lease")
    provider = next(iter(lookups))
    assert recovery.lease_lookups(db_session, [job_id], provider, "task-a", 60) == {job_id}
    assert recovery.lease_lookups(db_session, [job_id], provider, "task-b", 60) == set()
    assert recovery.lease_lookups(db_session, [job_id], provider, "task-a", 60) == {job_id}
    recovery.release_lookups(db_session, [job_id], provider, "task-a", -1)  # lease ran out
    assert recovery.lease_lookups(db_session, [job_id], provider, "task-b", 60) == {job_id}
    db_session.execute(
        text("UPDATE enrichment_lookups SET status = 'found' WHERE job_id = :j AND provider = :p"),
        {"j": job_id, "p": provider},
    )
    assert recovery.lease_lookups(db_session, [job_id], provider, "task-b", 60) == set(), (
        "an answered lookup is never leased (so never asked) again"
    )


def test_the_sweeper_skips_leased_lookups_busy_queues_and_replay_runs(db_session: Session) -> None:
    _, job_id, lookups = _job(db_session, "sweep-skip")
    provider = next(iter(lookups))
    db_session.execute(text("UPDATE enrichment_lookups SET updated_at = now() - interval '1 h'"))
    recovery.lease_lookups(db_session, [job_id], provider, "task-a", 600)
    nxt, _ = maintenance.find_stalled_work(db_session, 60)
    assert job_id not in nxt.lookups.get(provider, []), "a live lease means a worker is asking"
    recovery.release_lookups(db_session, [job_id], provider, "task-a", -1)
    nxt, _ = maintenance.find_stalled_work(db_session, 60, busy_providers=[provider])
    assert job_id not in nxt.lookups.get(provider, []), "its queue still holds messages"
    db_session.execute(text("UPDATE enrichment_lookups SET updated_at = now() - interval '1 h'"))
    nxt, _ = maintenance.find_stalled_work(db_session, 60)
    assert job_id in nxt.lookups[provider]


def test_failed_work_is_kept_rerun_and_counted(db_session: Session) -> None:
    """A transient failure is claimed for a re-run (once), a permanent one only by id; the same
    input failing again updates its row instead of adding one."""
    args: list[Any] = [{"kind": "track", "artist_name": "A"}, "scraper"]
    first = recovery.record_failed_work(
        db_session, "tasks.ingest.ingest_envelope", "t1", args, {}, "OperationalError: x", True
    )
    poison = recovery.record_failed_work(
        db_session, "tasks.merge.merge_jobs", "t2", [["j"]], {}, "ValueError: bad", False
    )
    mine = {first, poison}  # other tests' committed rows may be claimable too: ignore them

    def claim(**kw: Any) -> list[Any]:
        return [c for c in recovery.claim_failed_work(db_session, **kw) if c.id in mine]

    claimed = claim(older_than_s=-60, max_reruns=2)
    assert [c.id for c in claimed] == [first]
    assert claimed[0].args == args and claimed[0].task_name == "tasks.ingest.ingest_envelope"
    assert claim(older_than_s=-60, max_reruns=2) == [], "claimed once"
    again = recovery.record_failed_work(
        db_session, "tasks.ingest.ingest_envelope", "t1", args, {}, "OperationalError: y", True
    )
    assert again == first
    row = db_session.execute(
        text("SELECT status, reruns, error FROM failed_work WHERE id = :i"), {"i": first}
    ).one()
    assert (row.status, row.reruns, row.error) == ("failed", 1, "OperationalError: y")
    assert [c.id for c in claim(older_than_s=-60, max_reruns=2)] == [first]
    recovery.record_failed_work(
        db_session, "tasks.ingest.ingest_envelope", "t1", args, {}, "OperationalError: z", True
    )
    assert claim(older_than_s=-60, max_reruns=2) == [], "re-runs capped"
    by_id = recovery.claim_failed_work(db_session, 0, 2, ids=[poison])
    assert [c.id for c in by_id] == [poison], "an operator re-runs a permanent failure by id"


def test_a_setlist_whose_merge_message_was_lost_is_found(db_session: Session) -> None:
    from pipeline.gold import merge_playlist

    result = ingest_messages(
        db_session,
        [
            {
                "kind": "playlist",
                "source": "t-recovery",
                "source_url": "https://example.test/setlist-lost",
                "scraper_version": "1",
                "playlist_name": "Lost Setlist",
                "artist_name": "DJ Recovery",
                "raw_json": {
                    "tracks": [
                        {"position": 1, "artist": "Set Artist 1", "title": "Set Title 1"},
                        {"position": 2, "artist": "Set Artist 2", "title": "Set Title 2"},
                    ]
                },
            }
        ],
    )
    run_id = start_run(db_session, "incremental", "t-recovery")
    create_jobs(db_session, run_id, result.track_ids)
    playlist_id = db_session.execute(
        text("SELECT playlist_id FROM bronze_scraped_tracks WHERE id = :t"),
        {"t": result.track_ids[0]},
    ).scalar_one()
    assert str(playlist_id) not in recovery.stalled_playlists(db_session, -60, 3600)
    db_session.execute(
        text(
            "UPDATE enrichment_jobs SET status = 'merged', merged_at = now() WHERE run_id = :r "
            "AND bronze_track_id = :b"
        ),
        {"r": run_id, "b": result.track_ids[0]},
    )
    assert str(playlist_id) not in recovery.stalled_playlists(db_session, -60, 3600), (
        "one track still open: nothing is owed yet"
    )
    db_session.execute(
        text("UPDATE enrichment_jobs SET status = 'merged', merged_at = now() WHERE run_id = :r"),
        {"r": run_id},
    )
    assert str(playlist_id) in recovery.stalled_playlists(db_session, -60, 3600)
    assert str(playlist_id) not in recovery.stalled_playlists(db_session, 600, 3600), (
        "a merge younger than the age threshold may still have its message in flight"
    )
    assert merge_playlist(db_session, str(playlist_id)) is not None
    assert str(playlist_id) not in recovery.stalled_playlists(db_session, -60, 3600)


def test_views_are_stale_after_a_change_newer_than_the_last_refresh(db_session: Session) -> None:
    db_session.execute(text("DELETE FROM maintenance_marks WHERE name = :n"),
                       {"n": recovery.VIEWS_MARK})
    db_session.execute(
        text("""
        INSERT INTO silver_enriched_tracks (artist_name, track_title, identity_key,
            validation_status, data_quality_score, validation_errors)
        VALUES ('View Sweep', 'Stale', 'view sweep|stale', 'valid', 0.9, '[]')""")
    )
    assert recovery.views_stale(db_session, -60), "never refreshed, gold changed"
    assert not recovery.views_stale(db_session, 600), "the debounced refresh may be on its way"
    recovery.mark(db_session, recovery.VIEWS_MARK)
    assert not recovery.views_stale(db_session, -60)


def test_a_replay_chunk_whose_message_was_lost_is_found(db_session: Session) -> None:
    bronze = _track(db_session, "replay-lost")
    run_id = str(start_run(db_session, "replay", "replay:lost"))
    create_jobs(db_session, run_id, [bronze], replay_mode="stored")
    db_session.execute(
        text("UPDATE enrichment_jobs SET updated_at = now() - interval '1 h' WHERE run_id = :r"),
        {"r": run_id},
    )
    nxt, _ = maintenance.find_stalled_work(db_session, 60)
    assert not any(nxt.lookups.values()), "replay jobs are not re-sent as plain lookups"
    found = [r for r in recovery.stalled_replays(db_session, 60) if r.run_id == run_id]
    assert len(found) == 1 and found[0].mode == "stored" and not found[0].partial
    assert len(found[0].job_ids) == 1
    assert not [r for r in recovery.stalled_replays(db_session, 60) if r.run_id == run_id], (
        "touched when found: not re-sent again before the age threshold"
    )


def test_a_bronze_artist_missing_from_silver_is_found_and_built(db_session: Session) -> None:
    result = ingest_messages(
        db_session,
        [
            {
                "kind": "artist",
                "source": "t-recovery",
                "source_url": "https://example.test/artist-lost",
                "scraper_version": "1",
                "artist_name": "Lost Artist Recovery",
                "raw_json": {},
            }
        ],
    )
    artist = str(result.artist_ids[0])
    assert artist in recovery.orphan_artists(db_session, -60, 3600)
    recovery.artist_to_silver(db_session, artist)
    assert artist not in recovery.orphan_artists(db_session, -60, 3600)


def test_the_reaper_resends_open_work_instead_of_failing_it(db_session: Session) -> None:
    run_id, job_id, lookups = _job(db_session, "reap-resend")
    db_session.execute(
        text(
            "UPDATE enrichment_pipeline_runs SET started_at = now() - interval '7 hours' "
            "WHERE id = :r"
        ),
        {"r": run_id},
    )
    nxt = maintenance.resend_stuck_runs(db_session, 6 * 3600)
    assert sorted(nxt.lookups) == sorted(lookups)
    status = db_session.execute(
        text("SELECT status FROM enrichment_jobs WHERE id = :j"), {"j": job_id}
    ).scalar_one()
    assert status == "enriching", "re-sent, not failed"


def test_sweeps_never_overlap(engine: Engine) -> None:
    """The sweep lock: a second transaction cannot take it while the first holds it."""
    with Session(engine) as first, Session(engine) as second:
        assert recovery.try_sweep_lock(first)
        assert not recovery.try_sweep_lock(second)
        first.rollback()
        assert recovery.try_sweep_lock(second)
        second.rollback()
