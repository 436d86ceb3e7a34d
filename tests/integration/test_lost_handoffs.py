"""Every hand-off kind, lost in the broker, is re-derived from PostgreSQL by the sweeper.

For each kind the real worker stops consuming the queue that carries it, the pipeline runs up
to the hand-off, the queue is PURGED (the messages are gone, as with a broker that died), the
worker consumes the queue again and one sweep runs (``older_than_s=0``, as the sweep a worker
sends when it reconnects to the broker). The work then completes: nothing else sends it.

Kinds: provider lookups (``provider.*``), merges (``merge``), gold updates + setlist merges +
view refreshes (all on ``gold``), payments of owed artist aggregates and track appearances
(``gold``, migrations 019 and 023),
replay chunks (``replay``). Artists need no hand-off (ingest
writes them to silver in its own transaction); their reconciler is tested in
tests/db/test_recovery.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, text

from tests.integration.conftest import catalogue_rows, wait_for

pytestmark = pytest.mark.integration


@contextmanager
def _not_consumed(queues: list[str]) -> Iterator[None]:
    """The worker stops consuming ``queues`` inside the block, and consumes them again after."""
    from tasks.app import app

    for q in queues:
        app.control.cancel_consumer(q, reply=True, timeout=5, limit=1)
    try:
        yield
    finally:
        for q in queues:
            app.control.add_consumer(q, reply=True, timeout=5, limit=1)


def _waiting(queues: list[str]) -> int:
    from tasks.maintenance import queue_backlogs

    return sum(queue_backlogs(queues).values())


def _lose(queues: list[str]) -> int:
    """Purge ``queues`` (the broker lost them); return how many messages were dropped."""
    from tasks.app import app

    dropped = 0
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        for q in queues:
            dropped += int(channel.queue_purge(q) or 0)
    return dropped


def _sweep_now() -> None:
    from tasks.maintenance import sweep_stalled

    sweep_stalled.apply_async(kwargs={"older_than_s": 0, "reason": "test"})


def _envelopes(tag: str, count: int, offset: int, setlist: bool = False) -> list[dict[str, Any]]:
    rows = catalogue_rows(count, offset=offset)
    if setlist:
        return [
            {
                "kind": "playlist",
                "source": "it-handoff",
                "source_url": f"https://example.test/handoff/{tag}",
                "scraper_version": "it-1",
                "playlist_name": f"Hand-off set {tag}",
                "artist_name": "Hand-off DJ",
                "raw_json": {
                    "tracks": [
                        {"position": i, "artist": r["artist"], "title": r["title"]}
                        for i, r in enumerate(rows, start=1)
                    ]
                },
            }
        ]
    return [
        {
            "kind": "track",
            "source": "it-handoff",
            "source_url": f"https://example.test/handoff/{tag}/{i}",
            "scraper_version": "it-1",
            "artist_name": r["artist"],
            "track_title": r["title"],
            "raw_json": {"i": i},
        }
        for i, r in enumerate(rows)
    ]


def _jobs(engine: Engine, tag: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            text("""
            SELECT count(*) AS jobs, count(*) FILTER (WHERE j.status = 'merged') AS merged,
                   count(*) FILTER (WHERE j.status = 'merging') AS merging,
                   count(*) FILTER (WHERE r.run_status = 'running') AS open_runs
            FROM enrichment_pipeline_runs r JOIN enrichment_jobs j ON j.run_id = r.id
            WHERE r.triggered_by = :t"""),
            {"t": tag},
        ).one()


def _ingest(tag: str, envelopes: list[dict[str, Any]]) -> None:
    from tasks.ingest import ingest_batch

    ingest_batch.apply_async((envelopes, tag, "task"))


def _ingest_until_lookups_wait(
    engine: Engine, tag: str, count: int, offset: int, queues: list[str]
) -> None:
    """Ingest ``count`` tracks and wait until their jobs exist and lookup messages wait."""
    _ingest(tag, _envelopes(tag, count, offset=offset))
    wait_for(
        lambda: _jobs(engine, tag).jobs == count and _waiting(queues) > 0,
        60,
        "lookup messages waiting",
    )


def _provider_queues() -> list[str]:
    import celeryconfig

    return [f"provider.{p}" for p in celeryconfig.PROVIDER_QUEUES]


def test_lost_lookups_are_resent(worker: Any, engine: Engine) -> None:
    tag = f"handoff-lookups:{uuid.uuid4().hex[:8]}"
    queues = _provider_queues()
    with _not_consumed(queues):
        _ingest_until_lookups_wait(engine, tag, 5, 520, queues)
        assert _lose(queues) > 0
        assert _jobs(engine, tag).merged == 0
    _sweep_now()
    wait_for(lambda: _jobs(engine, tag).merged == 5, 90, "every job merged after the sweep")
    wait_for(lambda: _jobs(engine, tag).open_runs == 0, 30, "the run closed")


def test_the_broker_marker_tells_a_broker_that_lost_its_messages(worker: Any) -> None:
    """``tasks.broker_mark`` on the real Redis broker: set, the marker is kept; purged (the
    broker restarted empty), it is not; set again, it is."""
    from tasks import broker_mark

    broker_mark.set_mark()
    assert broker_mark.kept()
    assert _lose([broker_mark.MARK_QUEUE]) >= 1
    assert not broker_mark.kept()
    broker_mark.set_mark()
    assert broker_mark.kept()


def test_lookups_lost_with_the_broker_are_resent_though_new_messages_arrived(
    worker: Any, engine: Engine
) -> None:
    """The broker restarts empty (lookup messages and marker purged), then new lookup messages
    arrive before the sweep: the queues are busy again, yet the lost lookups are re-sent at
    once (the marker is gone) and every job merges. Before the marker, the busy queues hid the
    lost lookups until they were older than the sweep age and a later sweep ran (a chaos run:
    365 lookups stalled 90 s)."""
    from tasks import broker_mark

    tag = f"handoff-restart:{uuid.uuid4().hex[:8]}"
    queues = _provider_queues()
    broker_mark.set_mark()
    with _not_consumed(queues):
        _ingest_until_lookups_wait(engine, tag, 4, 560, queues)
        assert _lose([*queues, broker_mark.MARK_QUEUE]) > 1  # the broker restarted empty
        later = f"handoff-restart-new:{uuid.uuid4().hex[:8]}"
        _ingest(later, _envelopes(later, 2, offset=570))  # new messages after the restart
        wait_for(lambda: _waiting(queues) > 0, 60, "new lookup messages waiting")
        from tasks.maintenance import sweep_stalled

        # A beat sweep (the default age, 90 s, is far older than these lookups).
        sweep_stalled.apply_async(kwargs={"reason": "test"})
        wait_for(broker_mark.kept, 30, "the sweep to set the marker again")
    wait_for(lambda: _jobs(engine, tag).merged == 4, 90, "the lost lookups re-sent and merged")
    wait_for(lambda: _jobs(engine, later).merged == 2, 60, "the new ones merged too")


def test_lost_merges_are_resent(worker: Any, engine: Engine) -> None:
    tag = f"handoff-merge:{uuid.uuid4().hex[:8]}"
    with _not_consumed(["merge"]):
        _ingest(tag, _envelopes(tag, 5, offset=530))
        wait_for(
            lambda: _jobs(engine, tag).merging == 5 and _waiting(["merge"]) > 0,
            60,
            "every job waiting for its merge message",
        )
        assert _lose(["merge"]) > 0
    _sweep_now()
    wait_for(lambda: _jobs(engine, tag).merged == 5, 90, "every job merged after the sweep")
    wait_for(lambda: _jobs(engine, tag).open_runs == 0, 30, "the run closed")


def test_lost_gold_setlist_and_view_messages_are_resent(worker: Any, engine: Engine) -> None:
    """The ``gold`` queue carries gold updates, setlist merges and the view refresh: all three
    are lost together and all three are re-derived."""
    tag = f"handoff-gold:{uuid.uuid4().hex[:8]}"
    with _not_consumed(["gold"]):
        _ingest(tag, _envelopes(tag, 4, offset=540, setlist=True))
        wait_for(
            lambda: _jobs(engine, tag).merged == 4 and _waiting(["gold"]) > 0,
            60,
            "every job merged, gold messages waiting",
        )
        assert _lose(["gold"]) > 0

    def state() -> Any:
        with engine.connect() as conn:
            return conn.execute(
                text("""
                SELECT (SELECT count(*) FROM silver_enriched_playlists sp
                          JOIN bronze_scraped_playlists bp ON bp.id = sp.bronze_id
                          WHERE bp.source_url = :u) AS playlists,
                       (SELECT count(*) FROM gold_playlist_analytics g
                          JOIN silver_enriched_playlists sp ON sp.id = g.silver_playlist_id
                          JOIN bronze_scraped_playlists bp ON bp.id = sp.bronze_id
                          WHERE bp.source_url = :u) AS gold_playlists,
                       (SELECT count(*) FROM enrichment_jobs j
                          JOIN enrichment_pipeline_runs r ON r.id = j.run_id
                          JOIN silver_enriched_tracks s ON s.id = j.silver_track_id
                          LEFT JOIN gold_track_analytics g ON g.silver_track_id = s.id
                          WHERE r.triggered_by = :t AND s.validation_status IN ('valid', 'warning')
                            AND jsonb_array_length(coalesce(s.validation_errors, '[]')) = 0
                            AND (g.id IS NULL OR g.last_analyzed_at < s.updated_at))
                         AS gold_missing,
                       (SELECT at FROM maintenance_marks WHERE name = 'gold_views_refreshed')
                         >= (SELECT max(s.updated_at) FROM enrichment_jobs j
                              JOIN enrichment_pipeline_runs r ON r.id = j.run_id
                              JOIN silver_enriched_tracks s ON s.id = j.silver_track_id
                              WHERE r.triggered_by = :t) AS views_fresh"""),
                {"u": f"https://example.test/handoff/{tag}", "t": tag},
            ).one()

    lost = state()
    assert lost.playlists == 0, "the setlist merge message was lost"
    _sweep_now()
    wait_for(
        lambda: (
            (s := state()).playlists == 1
            and s.gold_playlists == 1
            and s.gold_missing == 0
            and bool(s.views_fresh)
        ),
        90,
        "setlist in silver and gold, gold rows current, views refreshed after the sweep",
    )


# (queue, its id column, the gold table, its id column, the silver ids of a tag's jobs, task)
_OWED = {
    "artists": (
        "gold_artist_refresh_queue", "artist_id", "gold_artist_analytics", "silver_artist_id",
        """SELECT DISTINCT ta.artist_id FROM enrichment_jobs j
           JOIN enrichment_pipeline_runs r ON r.id = j.run_id
           JOIN silver_track_artists ta ON ta.track_id = j.silver_track_id
           WHERE r.triggered_by = :t""",
        "update_artists_task",
    ),
    "tracks": (
        "gold_track_refresh_queue", "track_id", "gold_track_analytics", "silver_track_id",
        """SELECT DISTINCT j.silver_track_id FROM enrichment_jobs j
           JOIN enrichment_pipeline_runs r ON r.id = j.run_id
           WHERE r.triggered_by = :t AND j.silver_track_id IS NOT NULL""",
        "update_owed_tracks_task",
    ),
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(_OWED))
def test_a_lost_payment_of_owed_gold_rows_is_resent(
    worker: Any, engine: Engine, kind: str
) -> None:
    """Artists owed a gold re-aggregation (rows of ``gold_artist_refresh_queue``, 019) or
    tracks owed their appearances (``gold_track_refresh_queue``, 023) whose payment message the
    broker lost are paid after one sweep."""
    import tasks.gold

    queue, column, gold, gold_column, ids_sql, task_name = _OWED[kind]
    task = getattr(tasks.gold, task_name)
    tag = f"handoff-{kind}:{uuid.uuid4().hex[:8]}"
    # Tracks are owed their appearances when a setlist naming them is merged.
    if kind == "artists":
        _ingest(tag, _envelopes(tag, 3, offset=560))
    else:
        _ingest(tag, _envelopes(tag, 3, offset=580, setlist=True))

    def silver_ids() -> list[str]:
        with engine.connect() as conn:
            return [str(r[0]) for r in conn.execute(text(ids_sql), {"t": tag})]

    def owed_and_paid(ids: list[str], since: Any) -> tuple[int, int]:
        with engine.connect() as conn:
            row = conn.execute(
                text(f"""SELECT (SELECT count(*) FROM {queue}
                                  WHERE {column} = ANY(CAST(:ids AS uuid[]))),
                                (SELECT count(*) FROM {gold}
                                  WHERE {gold_column} = ANY(CAST(:ids AS uuid[]))
                                    AND last_analyzed_at > :since)"""),
                {"ids": ids, "since": since},
            ).one()  # fmt: skip
            return int(row[0]), int(row[1])

    wait_for(lambda: _jobs(engine, tag).merged == 3 and silver_ids(), 60, "tracks merged")
    ids = silver_ids()
    # The ingest's own payment (an ETA message the worker already holds) is done first.
    wait_for(lambda: owed_and_paid(ids, "-infinity") == (0, len(ids)), 60, "first payment")
    with _not_consumed(["gold"]):
        with engine.begin() as conn:  # a later change owes them again; its payment is lost
            since = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
            conn.execute(
                text(f"INSERT INTO {queue} ({column}) "
                     "SELECT unnest(CAST(:ids AS uuid[])) ON CONFLICT DO NOTHING"),
                {"ids": ids},
            )  # fmt: skip
        task.delay()
        wait_for(lambda: _waiting(["gold"]) > 0, 30, "the payment message waiting")
        assert _lose(["gold"]) > 0
    assert owed_and_paid(ids, since) == (len(ids), 0), "owed, and the payment is gone"
    _sweep_now()
    wait_for(
        lambda: owed_and_paid(ids, since) == (0, len(ids)),
        90,
        f"every owed {kind[:-1]} paid after the sweep",
    )


def test_lost_replay_chunks_are_resent(worker: Any, engine: Engine) -> None:
    from tasks.replay import drain_replay_queue

    tag = f"handoff-replay:{uuid.uuid4().hex[:8]}"
    _ingest(tag, _envelopes(tag, 4, offset=550))
    wait_for(lambda: _jobs(engine, tag).merged == 4, 90, "the first run merged")
    with engine.connect() as conn:
        bronze = [
            str(r[0])
            for r in conn.execute(
                text(
                    "SELECT j.bronze_track_id FROM enrichment_jobs j JOIN "
                    "enrichment_pipeline_runs r ON r.id = j.run_id WHERE r.triggered_by = :t"
                ),
                {"t": tag},
            )
        ]
    with engine.begin() as conn:
        qid = conn.execute(
            text(
                "INSERT INTO pipeline_replay_queue (bronze_ids, target_layer, requested_by, "
                "reason) VALUES (CAST(:ids AS text[]), 'silver', 'it', 'lost chunk') "
                "RETURNING id"
            ),
            {"ids": bronze},
        ).scalar_one()

    def status() -> str:
        with engine.connect() as conn:
            return str(
                conn.execute(
                    text("SELECT status FROM pipeline_replay_queue WHERE id = :i"), {"i": qid}
                ).scalar_one()
            )

    with _not_consumed(["replay"]):
        # The drain runs on the replay queue too: run it here (its chunks go to the broker).
        drain_replay_queue.apply()
        wait_for(
            lambda: status() == "processing" and _waiting(["replay"]) > 0,
            60,
            "the replay started, its chunk waiting",
        )
        assert _lose(["replay"]) > 0
    _sweep_now()

    def done() -> bool:
        drain_replay_queue.apply()  # beat is not running in tests: drive the drain
        return status() == "completed"

    wait_for(done, 90, "the replay completed after the sweep")


def test_ingest_wait_resends_batches_the_broker_lost(
    worker: Any, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``songnodes ingest --wait`` (its intake phase, ``_Resender``): batches lost in the broker
    before any worker saw them are sent again once nothing arrives for the re-send delay, and
    every record reaches bronze exactly once."""
    from pipeline.cli import pipeline_cmds

    monkeypatch.setattr(pipeline_cmds, "RESEND_AFTER_S", 1.0)
    tag = f"handoff-intake:{uuid.uuid4().hex[:8]}"
    envelopes = _envelopes(tag, 6, offset=560)
    batches = [envelopes[:3], envelopes[3:]]
    sent = [0]
    with _not_consumed(["ingest"]):
        for batch in batches:
            pipeline_cmds._send(batch, tag, sent)
        wait_for(lambda: _waiting(["ingest"]) == 2, 30, "both batches waiting")
        assert _lose(["ingest"]) == 2, "the broker lost both batches"
    resender = pipeline_cmds._Resender(tag, batches, sent)
    wait_for(lambda: resender.read()[2], 60, "every batch ingested after the re-send")
    assert sent[0] == 4, "each batch sent twice: once lost, once re-sent"
    with engine.connect() as conn:
        bronze = conn.execute(
            text("SELECT count(*) FROM bronze_scraped_tracks WHERE source_url LIKE :u"),
            {"u": f"https://example.test/handoff/{tag}/%"},
        ).scalar_one()
    assert bronze == 6
