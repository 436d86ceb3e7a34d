"""Chaos tier: a worker SIGKILLed mid-batch and restarted loses nothing and doubles nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from tests.integration.conftest import WorkerProcess, catalogue_rows, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.chaos]


@pytest.fixture
def chaos_env(pipeline_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """The pipeline environment on broker keys no other worker consumes (own key prefix)."""
    from tasks.app import app

    prefix = pipeline_env["SONGNODES_BROKER_KEYPREFIX"] + "chaos:"
    old = dict(app.conf.broker_transport_options)
    _switch_prefix(app, old | {"global_keyprefix": prefix})
    try:
        yield pipeline_env | {"SONGNODES_BROKER_KEYPREFIX": prefix}
    finally:
        _switch_prefix(app, old)


def _switch_prefix(app: Any, options: dict[str, Any]) -> None:
    # The producer pool caches connections with the old options; a new pool is built lazily.
    # kombu.pools.reset closes every pool and empties kombu's registry of them (a pool only
    # closed would be handed back, closed, to the next user of the same URL).
    from kombu import pools

    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None
    app.conf.broker_transport_options = options


def _counts(engine: Engine, tag: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            text("""
            SELECT count(*) AS jobs,
                   count(*) FILTER (WHERE j.status = 'merged') AS merged,
                   count(DISTINCT j.bronze_track_id) AS bronze,
                   (SELECT count(*) FROM (
                        SELECT t.bronze_id, t.provider_used, t.metadata_field
                        FROM enrichment_transformations t WHERE t.run_id = ANY(array_agg(r.id))
                          AND t.transformation_type = 'enrichment'
                        GROUP BY 1, 2, 3 HAVING count(*) > 1) d) AS doubled,
                   (SELECT count(*) FROM (
                        SELECT t.bronze_id, t.metadata_field
                        FROM enrichment_transformations t WHERE t.run_id = ANY(array_agg(r.id))
                          AND t.transformation_type = 'merge'
                        GROUP BY 1, 2 HAVING count(*) > 1) m) AS merged_twice
            FROM enrichment_pipeline_runs r JOIN enrichment_jobs j ON j.run_id = r.id
            WHERE r.triggered_by = :t"""),
            {"t": tag},
        ).one()


def _answered_lookups(engine: Engine, tag: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM enrichment_lookups l JOIN enrichment_jobs j"
                    " ON j.id = l.job_id JOIN enrichment_pipeline_runs r ON r.id = j.run_id"
                    " WHERE r.triggered_by = :t AND l.status <> 'pending'"
                ),
                {"t": tag},
            ).scalar_one()
        )


def test_worker_killed_mid_batch_then_restarted(
    chaos_env: dict[str, str], engine: Engine, sandbox: Any, tmp_path: Path
) -> None:
    """SIGKILL of the whole worker while lookups run; after restart every record is merged once,
    with exactly one enrichment outcome per (record, provider, field)."""
    from tasks.ingest import ingest_batch

    rows = catalogue_rows(20, offset=100)
    tag = f"chaos:{uuid.uuid4().hex[:8]}"
    envelopes = [
        {
            "kind": "track",
            "source": "it-chaos",
            "source_url": f"https://example.test/{i}",
            "scraper_version": "it-1",
            "artist_name": r["artist"],
            "track_title": r["title"],
            "raw_json": {"i": i},
        }
        for i, r in enumerate(rows)
    ]
    sandbox.configure("spotify", latency_ms=400)
    first = WorkerProcess(chaos_env, tmp_path / "first.log")
    first.start()
    try:
        ingest_batch.apply_async((envelopes, tag, "task"))
        wait_for(lambda: _counts(engine, tag).jobs == 20, 60, "jobs to exist")
        # Kill once some lookups are recorded but the slow Spotify batch is still in flight.
        # (Not "after the first merge": a merge message merges its whole batch in one
        # transaction, so merged counts jump from 0 to all of them at once.)
        wait_for(lambda: _answered_lookups(engine, tag) >= 1, 60, "the first recorded lookup")
        first.kill()
    finally:
        first.kill()
        sandbox.configure("spotify", latency_ms=0)
    killed = _counts(engine, tag)
    assert killed.merged < 20, "the kill came too late to interrupt anything"
    second = WorkerProcess(chaos_env, tmp_path / "second.log")
    second.start()
    try:
        wait_for(lambda: _counts(engine, tag).merged == 20, 180, "all records merged after restart")
    finally:
        second.stop()
    final = _counts(engine, tag)
    assert (final.jobs, final.merged, final.bronze) == (20, 20, 20)
    assert final.doubled == 0 and final.merged_twice == 0
    with engine.connect() as conn:
        silver = conn.execute(
            text(
                "SELECT count(DISTINCT j.silver_track_id) FROM enrichment_jobs j "
                "JOIN enrichment_pipeline_runs r ON r.id = j.run_id WHERE r.triggered_by = :t"
            ),
            {"t": tag},
        ).scalar_one()
    assert silver == 20


def test_sightings_waiting_for_a_killed_leader_are_merged_after_restart(
    chaos_env: dict[str, str], engine: Engine, sandbox: Any, tmp_path: Path
) -> None:
    """Issue 17: 8 new tracks seen 3 times each in one batch; the worker is SIGKILLed while the
    leaders' lookups run. After restart every sighting is merged once, onto one silver track
    per track, and each provider was asked about each track once (the waiting sightings never
    looked up)."""
    from tasks.ingest import ingest_batch

    tag = f"chaos17:{uuid.uuid4().hex[:8]}"
    envelopes = [
        {
            "kind": "track",
            "source": "it-chaos",
            "source_url": f"https://example.test/{tag}/{i}/{n}",
            "scraper_version": "it-1",
            "artist_name": f"Chaos Artist {tag}",
            "track_title": f"Chaos Song {i}",
            "raw_json": {"i": i, "n": n},
        }
        for n in range(3)
        for i in range(8)
    ]
    sandbox.configure("spotify", latency_ms=400)
    first = WorkerProcess(chaos_env, tmp_path / "first.log")
    first.start()
    try:
        ingest_batch.apply_async((envelopes, tag, "task"))
        wait_for(lambda: _counts(engine, tag).jobs == 24, 60, "jobs to exist")
        wait_for(lambda: _answered_lookups(engine, tag) >= 1, 60, "the first recorded lookup")
        first.kill()
    finally:
        first.kill()
        sandbox.configure("spotify", latency_ms=0)
    assert _counts(engine, tag).merged < 24, "the kill came too late to interrupt anything"
    second = WorkerProcess(chaos_env, tmp_path / "second.log")
    second.start()
    try:
        wait_for(lambda: _counts(engine, tag).merged == 24, 180, "all sightings merged")
    finally:
        second.stop()
    final = _counts(engine, tag)
    assert final.doubled == 0 and final.merged_twice == 0
    with engine.connect() as conn:
        silver, most = conn.execute(
            text(
                """
                SELECT (SELECT count(DISTINCT j.silver_track_id) FROM enrichment_jobs j
                        JOIN enrichment_pipeline_runs r ON r.id = j.run_id
                        WHERE r.triggered_by = :t),
                       (SELECT max(n) FROM (
                          SELECT count(*) AS n FROM enrichment_lookups l
                          JOIN enrichment_jobs j ON j.id = l.job_id
                          JOIN enrichment_pipeline_runs r ON r.id = j.run_id
                          JOIN bronze_scraped_tracks b ON b.id = j.bronze_track_id
                          WHERE r.triggered_by = :t GROUP BY b.track_title, l.provider) x)
                """
            ),
            {"t": tag},
        ).one()
    assert silver == 8 and most == 1
