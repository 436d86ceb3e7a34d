"""Replay through a real worker: the seed's queue INSERT, stored/live/partial/gold modes,
bad requests, and waterfall changes picked up without a restart."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import Engine, text

from tests.integration.conftest import catalogue_rows, run_and_wait, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SILVER_COLS = (
    "artist_name, track_title, spotify_id, isrc, beatport_id, musicbrainz_id, deezer_id, "
    "tidal_id, discogs_id, release_date, duration_ms, bpm, key, genre, energy, valence, "
    "danceability"
)


def _tracks(rows: list[dict[str, str]], tag: str) -> list[dict[str, Any]]:
    return [
        {
            "kind": "track",
            "source": "it-replay",
            "source_url": f"https://example.test/replay/{tag}/{i}",
            "source_track_id": f"{tag}-{i}",
            "scraper_version": "it-1",
            "artist_name": r["artist"],
            "track_title": r["title"],
            "raw_json": {"artist": r["artist"], "title": r["title"]},
        }
        for i, r in enumerate(rows)
    ]


def _seed(engine: Engine, offset: int, count: int) -> tuple[str, list[str]]:
    """Ingest ``count`` catalogue tracks through the worker; (run id, bronze ids)."""
    tag = f"it-replay:{uuid.uuid4().hex[:8]}"
    run_and_wait(engine, _tracks(catalogue_rows(count, offset=offset), tag), tag)
    with engine.connect() as conn:
        run_id = conn.execute(
            text("SELECT id FROM enrichment_pipeline_runs WHERE triggered_by = :t"), {"t": tag}
        ).scalar_one()
        bronze = [
            str(r[0])
            for r in conn.execute(
                text("SELECT bronze_track_id FROM enrichment_jobs WHERE run_id = :r"),
                {"r": run_id},
            )
        ]
    return str(run_id), sorted(bronze)


def _prefixed() -> str:
    return ", ".join(f"s.{c.strip()}" for c in SILVER_COLS.split(","))


def _silver(engine: Engine, bronze_ids: list[str]) -> dict[str, tuple[Any, ...]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                f"SELECT b.id AS bronze, {_prefixed()} FROM bronze_scraped_tracks b "
                "JOIN silver_enriched_tracks s ON s.bronze_id = b.id OR EXISTS (SELECT 1 FROM "
                "silver_track_sightings x WHERE x.silver_id = s.id AND x.bronze_id = b.id) "
                "WHERE b.id = ANY(CAST(:ids AS uuid[]))"
            ),
            {"ids": bronze_ids},
        ).all()
    return {str(r[0]): tuple(r[1:]) for r in rows}


def _queue(engine: Engine, bronze_ids: list[str], **cols: Any) -> str:
    """The seed's INSERT (bronze_ids as a text ARRAY literal), plus optional columns."""
    layer = cols.pop("target_layer", "silver")
    names = ["bronze_ids", "target_layer", "requested_by", "reason", *cols]
    values = ["CAST(:ids AS text[])", ":layer", "'user@example.com'", "'integration test'"]
    values += [f":{k}" for k in cols]
    with engine.begin() as conn:
        qid = conn.execute(
            text(
                f"INSERT INTO pipeline_replay_queue ({', '.join(names)}) "
                f"VALUES ({', '.join(values)}) RETURNING id"
            ),
            {"ids": bronze_ids, "layer": layer, **cols},
        ).scalar_one()
    return str(qid)


def _drain_until_done(engine: Engine, *queue_ids: str) -> dict[str, Any]:
    from tasks.replay import drain_replay_queue

    drain_replay_queue.delay()

    def done() -> bool:
        with engine.connect() as conn:
            n = conn.execute(
                text(
                    "SELECT count(*) FROM pipeline_replay_queue "
                    "WHERE id = ANY(CAST(:ids AS uuid[])) AND status IN ('completed', 'failed')"
                ),
                {"ids": list(queue_ids)},
            ).scalar_one()
        if n < len(queue_ids):
            drain_replay_queue.delay()  # beat is not running in tests: drive the drain
        return bool(n == len(queue_ids))

    wait_for(done, 120, "replay rows to finish")
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT * FROM pipeline_replay_queue WHERE id = ANY(CAST(:ids AS uuid[]))"),
            {"ids": list(queue_ids)},
        ).all()
    return {str(r.id): r for r in rows}


def _calls(sandbox: Any) -> int:
    return sum(sum(v.values()) for v in sandbox.stats().values())


def test_stored_replay_with_own_snapshot_reproduces_silver_with_zero_calls(
    worker: Any, engine: Engine, sandbox: Any
) -> None:
    """The seed's historical-config INSERT re-merges from stored responses: identical silver
    values, zero provider requests, a completed row with its replay run and summary."""
    run_id, bronze = _seed(engine, offset=400, count=6)
    before, calls_before = _silver(engine, bronze), _calls(sandbox)
    assert len(before) == 6
    qid = _queue(engine, bronze, use_historical_config=True, config_snapshot_run_id=run_id)
    row = _drain_until_done(engine, qid)[qid]
    assert row.status == "completed", row.error_message
    assert _calls(sandbox) == calls_before
    assert _silver(engine, bronze) == before
    with engine.connect() as conn:
        run = conn.execute(
            text("SELECT * FROM enrichment_pipeline_runs WHERE id = :r"),
            {"r": row.assigned_run_id},
        ).one()
        merges = conn.execute(
            text(
                "SELECT count(*) FROM enrichment_transformations WHERE run_id = :r "
                "AND transformation_type = 'merge'"
            ),
            {"r": row.assigned_run_id},
        ).scalar_one()
        hist = conn.execute(
            text("SELECT waterfall_config_snapshot FROM enrichment_pipeline_runs WHERE id = :r"),
            {"r": run_id},
        ).scalar_one()
    assert run.run_type == "replay" and run.total_api_calls == 0
    assert run.waterfall_config_snapshot == hist
    assert run.error_summary["replay"]["succeeded"] == 6
    assert run.error_summary["replay"]["fields_changed"] == 0
    assert merges > 6


def test_partial_replay_repairs_one_field_and_leaves_the_rest(
    worker: Any, engine: Engine, sandbox: Any
) -> None:
    """fields_to_replay=['bpm'] restores a corrupted BPM from stored responses and leaves a
    (deliberately) edited other field alone."""
    _, bronze = _seed(engine, offset=420, count=2)
    good = _silver(engine, bronze)
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE silver_enriched_tracks SET bpm = 61.5, energy = 0.01 "
                "WHERE bronze_id = ANY(CAST(:ids AS uuid[]))"
            ),
            {"ids": bronze},
        )
    qid = _queue(engine, bronze, fields_to_replay=["bpm"])
    row = _drain_until_done(engine, qid)[qid]
    assert row.status == "completed", row.error_message
    after = _silver(engine, bronze)
    cols = [c.strip() for c in SILVER_COLS.split(",")]
    for b in bronze:
        assert after[b][cols.index("bpm")] == good[b][cols.index("bpm")]
        assert float(after[b][cols.index("energy")]) == 0.01
        assert after[b][cols.index("artist_name")] == good[b][cols.index("artist_name")]


def test_force_re_enrichment_calls_providers_live(
    worker: Any, engine: Engine, sandbox: Any
) -> None:
    """force_re_enrichment asks the providers again (the sandbox sees new requests)."""
    _, bronze = _seed(engine, offset=430, count=1)
    calls = _calls(sandbox)
    qid = _queue(engine, bronze, force_re_enrichment=True)
    row = _drain_until_done(engine, qid)[qid]
    assert row.status == "completed", row.error_message
    assert _calls(sandbox) > calls


def test_bad_requests_fail_with_a_reason_and_the_queue_goes_on(worker: Any, engine: Engine) -> None:
    """Unknown bronze ids, unknown fields and a failed historical run each fail with a clear
    message; a good gold-only row queued after them still completes."""
    _, bronze = _seed(engine, offset=440, count=1)
    with engine.begin() as conn:
        failed_run = str(
            conn.execute(text("SELECT start_pipeline_run('manual', 'it', 'test')")).scalar_one()
        )
        conn.execute(text("SELECT complete_pipeline_run(:r, 'failed')"), {"r": failed_run})
        before = conn.execute(
            text(
                "SELECT max(g.last_analyzed_at) FROM gold_track_analytics g "
                "JOIN silver_enriched_tracks s ON s.id = g.silver_track_id WHERE s.bronze_id = :b"
            ),
            {"b": bronze[0]},
        ).scalar_one()
    unknown = _queue(engine, [str(uuid.uuid4())], priority=9)
    badfield = _queue(engine, bronze, fields_to_replay=["bpm", "tempo_vibes"], priority=9)
    badrun = _queue(
        engine, bronze, use_historical_config=True, config_snapshot_run_id=failed_run, priority=9
    )
    gold = _queue(engine, bronze, target_layer="gold", priority=1)
    rows = _drain_until_done(engine, unknown, badfield, badrun, gold)
    assert rows[unknown].status == "failed"
    assert "unknown bronze track ids" in rows[unknown].error_message
    assert rows[badfield].status == "failed" and "tempo_vibes" in rows[badfield].error_message
    assert rows[badrun].status == "failed" and "failed" in rows[badrun].error_message
    assert rows[gold].status == "completed", rows[gold].error_message
    assert rows[gold].started_at >= max(rows[x].started_at for x in (unknown, badfield, badrun))
    with engine.connect() as conn:
        after = conn.execute(
            text(
                "SELECT max(g.last_analyzed_at) FROM gold_track_analytics g "
                "JOIN silver_enriched_tracks s ON s.id = g.silver_track_id WHERE s.bronze_id = :b"
            ),
            {"b": bronze[0]},
        ).scalar_one()
    assert after is not None and (before is None or after > before)


def test_empty_bronze_id_list_is_refused_by_the_database(engine: Engine) -> None:
    """An empty id list never reaches the worker: the queue's CHECK refuses it."""
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError):
        _queue(engine, [])


def _winner(engine: Engine, run_id: str, field: str) -> tuple[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT provider_used, transformation_rules FROM enrichment_transformations "
                "WHERE run_id = :r AND metadata_field = :f AND transformation_type = 'merge'"
            ),
            {"r": run_id, "f": field},
        ).one()
    return row[0], row[1]


def test_waterfall_change_applies_to_the_next_run_without_restart(
    worker: Any, engine: Engine
) -> None:
    """Reordering release_date's providers in SQL changes the next run's winner on the same
    running worker; each run's snapshot shows the order it used, and a replay with the first
    run's snapshot picks the first run's winner again."""
    field = "release_date"
    with engine.connect() as conn:
        original = conn.execute(
            text("SELECT * FROM metadata_enrichment_config WHERE metadata_field = :f"),
            {"f": field},
        ).one()
    run_a, _ = _seed(engine, offset=450, count=1)
    provider_a, _ = _winner(engine, run_a, field)
    other = "spotify" if provider_a != "spotify" else "musicbrainz"
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE metadata_enrichment_config SET priority_1_provider = :p, "
                    "priority_1_confidence = 0.01, priority_2_provider = :a, "
                    "priority_2_confidence = 0.01 WHERE metadata_field = :f"
                ),
                {"p": other, "a": provider_a, "f": field},
            )
        run_b, bronze_b = _seed(engine, offset=451, count=1)
    finally:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE metadata_enrichment_config SET priority_1_provider = :p1, "
                    "priority_1_confidence = :c1, priority_2_provider = :p2, "
                    "priority_2_confidence = :c2 WHERE metadata_field = :f"
                ),
                {
                    "p1": original.priority_1_provider,
                    "c1": original.priority_1_confidence,
                    "p2": original.priority_2_provider,
                    "c2": original.priority_2_confidence,
                    "f": field,
                },
            )
    provider_b, rules_b = _winner(engine, run_b, field)
    assert provider_b == other and rules_b["priority"] == 1
    with engine.connect() as conn:
        snaps: dict[str, str] = dict(
            conn.execute(
                text(
                    "SELECT id::text, waterfall_config_snapshot -> :f ->> 'priority_1_provider' "
                    "FROM enrichment_pipeline_runs WHERE id IN (:a, :b)"
                ),
                {"f": field, "a": run_a, "b": run_b},
            ).all()
        )
    assert snaps == {run_a: original.priority_1_provider, run_b: other}
    qid = _queue(engine, bronze_b, use_historical_config=True, config_snapshot_run_id=run_a)
    row = _drain_until_done(engine, qid)[qid]
    assert row.status == "completed", row.error_message
    replay_provider, rules = _winner(engine, str(row.assigned_run_id), field)
    assert replay_provider == provider_a and rules["config_run_id"] == str(row.assigned_run_id)
