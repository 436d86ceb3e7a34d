"""Gold artist aggregates (migration 019) and track appearances (023) are owed, coalesced and
paid in batches (issue 17).

A popular artist is named by most setlists; before 019 every setlist merge re-aggregated it (a
query over all its appearances), which bench/sightings measured as most of PostgreSQL's time
(53 s of 971 statements over 20 ms in a 2k-row run) and the reason its 20k-row run never
finished. On the real PostgreSQL: marks coalesce, a payment aggregates and empties the queue, a
mark renewed while a payment runs is kept for the next one (and does not wait for it), the task
pays in batches, and the sweeper finds marks whose payment message was lost.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from pipeline.gold import artists_owed, claim_owed_artists, owe_artists, owed_marks, pay_owed
from tests.db._helpers import insert_silver_track


def _artist(session: Session, name: str) -> str:
    return str(
        session.execute(
            text(
                "INSERT INTO silver_enriched_artists (canonical_name, normalized_name, "
                "validation_status) VALUES (:n, lower(:n), 'valid') RETURNING id"
            ),
            {"n": name},
        ).scalar_one()
    )


def _credit(session: Session, track_id: Any, artist_id: str) -> None:
    session.execute(
        text("INSERT INTO silver_track_artists (track_id, artist_id) VALUES (:t, :a)"),
        {"t": track_id, "a": artist_id},
    )


def _owed(session: Session) -> set[str]:
    rows = session.execute(text("SELECT artist_id FROM gold_artist_refresh_queue"))
    return {str(r[0]) for r in rows}


def test_marks_coalesce_and_a_claim_aggregates_each_artist_once(db_session: Session) -> None:
    tag = uuid.uuid4().hex[:8]
    a = _artist(db_session, f"Owed A {tag}")
    b = _artist(db_session, f"Owed B {tag}")
    conn = db_session.connection()
    for n, bpm in enumerate((124, 128)):
        track = insert_silver_track(conn, f"Owed A {tag}", f"Song {n} {tag}", bpm=bpm)
        _credit(db_session, track, a)
    _credit(db_session, insert_silver_track(conn, f"Owed B {tag}", f"Other {tag}", bpm=100), b)

    assert owe_artists(db_session, [a, b]) == 2
    owe_artists(db_session, [a, a, b])
    rows = db_session.execute(
        text("SELECT count(*) FROM gold_artist_refresh_queue "
             "WHERE artist_id = ANY(CAST(:ids AS uuid[]))"),
        {"ids": [a, b]},
    ).scalar_one()  # fmt: skip
    assert rows == 2, "marks coalesce: one per artist however often it is marked"
    assert owe_artists(db_session, [str(uuid.uuid4())]) == 0, "an unknown artist is not marked"
    assert _owed(db_session) >= {a, b}

    claimed = claim_owed_artists(db_session, limit=1000)
    assert {a, b} <= set(claimed)
    assert not _owed(db_session) & {a, b}
    gold = {
        str(r.silver_artist_id): r
        for r in db_session.execute(
            text("SELECT silver_artist_id, total_tracks, avg_bpm FROM gold_artist_analytics "
                 "WHERE silver_artist_id = ANY(CAST(:ids AS uuid[]))"),
            {"ids": [a, b]},
        )
    }  # fmt: skip
    assert gold[a].total_tracks == 2 and float(gold[a].avg_bpm) == 126.0
    assert gold[b].total_tracks == 1 and float(gold[b].avg_bpm) == 100.0


def test_owed_marks_older_than_the_age_are_reported_for_the_sweeper(db_session: Session) -> None:
    a = _artist(db_session, f"Old mark {uuid.uuid4().hex[:8]}")
    owe_artists(db_session, [a])
    before = artists_owed(db_session, 3600)
    db_session.execute(
        text("UPDATE gold_artist_refresh_queue SET marked_at = now() - interval '2 hours' "
             "WHERE artist_id = :a"),
        {"a": a},
    )  # fmt: skip
    assert artists_owed(db_session, 3600) == before + 1
    claim_owed_artists(db_session, limit=1000)
    assert artists_owed(db_session, 0) == 0


def test_a_mark_renewed_during_a_payment_is_kept_and_does_not_wait(engine: Engine) -> None:
    """A payment reads the marks, aggregates, then deletes the marks it read unchanged. A merge
    that marks the same artist meanwhile (its silver change committed after the payment's
    reads) renews the mark without waiting for the payment; the renewed mark survives it."""
    tag = uuid.uuid4().hex[:8]
    with Session(engine) as setup:
        a = _artist(setup, f"Race artist {tag}")
        b = _artist(setup, f"Calm artist {tag}")
        owe_artists(setup, [a, b])
        setup.commit()
    try:
        payer = Session(engine)
        marks = [m for m in owed_marks(payer, limit=100_000) if m[0] in (a, b)]
        assert sorted(m[0] for m in marks) == sorted([a, b])
        done = threading.Event()

        def mark() -> None:
            with Session(engine) as marker:
                owe_artists(marker, [a])
                marker.commit()
            done.set()

        thread = threading.Thread(target=mark)
        thread.start()
        assert done.wait(10), "the mark does not wait for the payment"
        thread.join(10)
        assert pay_owed(payer, marks) == 1, "only b's mark was still as read"
        payer.commit()
        payer.close()
        with Session(engine) as check:
            owed = _owed(check)
            assert a in owed, "the mark renewed during the payment is owed again"
            assert b not in owed
    finally:
        with Session(engine) as cleanup:
            cleanup.execute(
                text("DELETE FROM silver_enriched_artists WHERE id = ANY(CAST(:ids AS uuid[]))"),
                {"ids": [a, b]},
            )
            cleanup.commit()


def test_the_task_pays_every_owed_artist_in_batches(
    engine: Engine, database_url_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tasks.gold as gold_tasks

    tag = uuid.uuid4().hex[:8]
    with Session(engine) as s:
        s.execute(text("DELETE FROM gold_artist_refresh_queue"))
        ids = [_artist(s, f"Batch {tag} {n}") for n in range(5)]
        owe_artists(s, ids)
        s.commit()
    monkeypatch.setattr(gold_tasks, "ARTISTS_PER_PAYMENT", 2)
    try:
        assert gold_tasks.update_artists_task.run() == 5  # 2 + 2 + 1: three transactions
        with Session(engine) as s:
            assert not _owed(s) & set(ids)
            paid = s.execute(
                text("SELECT count(*) FROM gold_artist_analytics "
                     "WHERE silver_artist_id = ANY(CAST(:ids AS uuid[]))"),
                {"ids": ids},
            ).scalar_one()  # fmt: skip
            assert paid == 5
    finally:
        with Session(engine) as s:
            s.execute(
                text("DELETE FROM silver_enriched_artists WHERE id = ANY(CAST(:ids AS uuid[]))"),
                {"ids": ids},
            )
            s.commit()


def _appear(session: Session, track: Any, date: str) -> None:
    """One more setlist (on ``date``) naming ``track``."""
    session.execute(
        text(
            "WITH p AS (INSERT INTO silver_enriched_playlists (playlist_name, artist_name, "
            "event_date) VALUES ('Owed set', 'Owed DJ', CAST(:d AS date)) RETURNING id) "
            "INSERT INTO silver_playlist_tracks (playlist_id, track_id, position) "
            "SELECT p.id, :t, 1 FROM p"
        ),
        {"t": track, "d": date},
    )


def _appearances(session: Session, track: Any) -> tuple[Any, ...] | None:
    row = session.execute(
        text(
            "SELECT playlist_appearances, last_played_at::date::text FROM gold_track_analytics "
            "WHERE silver_track_id = :t"
        ),
        {"t": track},
    ).first()
    return None if row is None else tuple(row)


def test_track_appearances_are_owed_and_one_payment_counts_them(db_session: Session) -> None:
    """Migration 023: setlists naming a track mark it owed (coalesced, one mark however many
    setlists); one payment writes its gold row with every appearance and the latest date, and
    empties its mark; a mark renewed after the payment read it stays owed."""
    from pipeline.gold import claim_owed, owe_tracks, owed_older_than, upsert_track_analytics

    tag = uuid.uuid4().hex[:8]
    conn = db_session.connection()
    track = insert_silver_track(
        conn, f"Owed T {tag}", f"Hit {tag}", bpm=126, validation_status="valid"
    )
    upsert_track_analytics(db_session, [str(track)])
    assert _appearances(db_session, track) == (0, None)
    for date in ("2025-10-03", "2025-11-29", "2025-10-17"):
        _appear(db_session, track, date)
        assert owe_tracks(db_session, [str(track)]) == 1
    marks = [m for m in owed_marks(db_session, 10_000, "tracks") if m[0] == str(track)]
    assert len(marks) == 1  # three setlists, one mark
    assert owed_older_than(db_session, "tracks", -60) >= 1
    assert str(track) in claim_owed(db_session, "tracks", 10_000)
    assert _appearances(db_session, track) == (3, "2025-11-29")
    assert not [m for m in owed_marks(db_session, 10_000, "tracks") if m[0] == str(track)]

    # A fourth setlist marks it again after a payment read the marks: that payment does not
    # take the renewed mark away.
    (read,) = marks
    _appear(db_session, track, "2025-12-05")
    owe_tracks(db_session, [str(track)])
    assert pay_owed(db_session, [read], "tracks") == 0  # the mark moved on: still owed
    assert [m[0] for m in owed_marks(db_session, 10_000, "tracks")].count(str(track)) == 1
    with pytest.raises(ValueError, match="no owed gold queue"):
        owed_marks(db_session, 1, "playlists")
