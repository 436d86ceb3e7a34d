"""End to end through a real worker: envelope -> bronze -> lookups -> silver -> gold."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import pytest
from sqlalchemy import Engine, text

from tests.integration.conftest import (
    catalogue_rows,
    restore_provider,
    run_and_wait,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _camelot_steps(a: str, b: str) -> int:
    # Written independently of pipeline.camelot: wheel distance plus one for a ring change.
    na, la, nb, lb = int(a[:-1]), a[-1], int(b[:-1]), b[-1]
    diff = abs(na - nb) % 12
    return min(diff, 12 - diff) + (la != lb)


def _expected_flow(keys: list[str]) -> tuple[float, float, int]:
    """(share of compatible transitions, graded score, key changes) of consecutive keys."""
    scores, compatible, changes = [], 0, 0
    for a, b in itertools.pairwise(keys):
        steps = _camelot_steps(a, b)
        compatible += steps <= 1
        scores.append(1.0 if steps <= 1 else max(0.0, 1.0 - 0.2 * (steps - 1)))
        changes += a != b
    return round(compatible / len(scores), 2), round(sum(scores) / len(scores), 2), changes


def _setlist(rows: list[dict[str, str]], tag: str) -> dict[str, Any]:
    return {
        "kind": "playlist",
        "source": "it-setlists",
        "source_url": f"https://example.test/sets/{tag}",
        "scraper_version": "it-1",
        "playlist_name": f"Integration set {tag}",
        "artist_name": "Integration DJ",
        "event_date": "2025-11-01",
        "raw_json": {
            "tracks": [
                {"position": i, "artist": r["artist"], "title": r["title"]}
                for i, r in enumerate(rows, start=1)
            ]
        },
    }


def _silver_for(engine: Engine, tag: str) -> list[Any]:
    with engine.connect() as conn:
        return conn.execute(
            text("""
            SELECT b.position, s.id, s.artist_name, s.track_title, s.bpm, s.key, s.isrc, s.genre,
                   s.validation_status
            FROM enrichment_pipeline_runs r JOIN enrichment_jobs j ON j.run_id = r.id
            JOIN bronze_scraped_tracks b ON b.id = j.bronze_track_id
            JOIN silver_enriched_tracks s ON s.id = j.silver_track_id
            WHERE r.triggered_by = :t ORDER BY b.position"""),
            {"t": tag},
        ).all()


def test_setlist_of_30_reaches_gold_with_waterfall_values(worker: Any, engine: Engine) -> None:
    """A 30-track setlist: silver holds the catalogue's values, provenance names the winner,
    and gold's harmonic flow equals the flow computed independently from the catalogue keys."""
    from pipeline.normalise.genres import normalise_genres

    rows = catalogue_rows(30, offset=0)
    tag = f"it:{uuid.uuid4().hex[:8]}"
    run_and_wait(engine, [_setlist(rows, tag)], tag)
    silver = _silver_for(engine, tag)
    assert [s.position for s in silver] == list(range(1, 31))
    for s, row in zip(silver, rows, strict=True):
        assert float(s.bpm) == float(row["bpm"]), (row, s)
        assert s.key == row["key"], (row, s)
        assert s.isrc == row["isrc"], (row, s)
        assert s.genre[:1] == normalise_genres(row["genre"])[:1], (row, s)
    with engine.connect() as conn:
        prov = conn.execute(
            text("""
            SELECT p.current_provider, p.current_confidence, cardinality(p.transformation_chain),
                   t.transformation_type, t.transformation_rules
            FROM field_provenance p JOIN enrichment_transformations t
              ON t.id = p.final_transformation_id
            WHERE p.silver_track_id = :s AND p.metadata_field = 'bpm'"""),
            {"s": silver[0].id},
        ).one()
    assert prov[0] in {"beatport", "acousticbrainz", "spotify", "mixesdb"}
    assert prov[2] >= 2 and prov[3] == "merge"
    assert "reason" in prov[4] and prov[4]["config_run_id"]

    def gold_ready() -> bool:
        with engine.connect() as conn:
            return (
                conn.execute(
                    text("SELECT count(*) FROM gold_playlist_analytics WHERE playlist_name = :n"),
                    {"n": f"Integration set {tag}"},
                ).scalar_one()
                == 1
            )

    wait_for(gold_ready, 60, "gold playlist analytics")
    with engine.connect() as conn:
        gold = conn.execute(
            text(
                "SELECT track_count, harmonic_flow_score, harmonic_flow_graded, key_changes, "
                "track_identification_rate FROM gold_playlist_analytics WHERE playlist_name = :n"
            ),
            {"n": f"Integration set {tag}"},
        ).one()
    flow, graded, changes = _expected_flow([r["key"] for r in rows])
    assert gold.track_count == 30
    assert float(gold.harmonic_flow_score) == flow
    assert float(gold.harmonic_flow_graded) == graded
    assert gold.key_changes == changes
    assert float(gold.track_identification_rate) == 1.0
    _assert_acousticbrainz_lookups_shared_batch_requests(engine, tag)


def _assert_acousticbrainz_lookups_shared_batch_requests(engine: Engine, tag: str) -> None:
    """A lookup task asks AcousticBrainz's bulk endpoint once for its jobs: fewer requests
    counted than lookups answered, and each lookup stored its own one-id request."""
    with engine.connect() as conn:
        ab = conn.execute(
            text("""
            SELECT l.status, l.api_calls FROM enrichment_lookups l
            JOIN enrichment_jobs j ON j.id = l.job_id
            JOIN enrichment_pipeline_runs r ON r.id = j.run_id
            WHERE r.triggered_by = :t AND l.provider = 'acousticbrainz'"""),
            {"t": tag},
        ).all()
        asked = (
            conn.execute(
                text("""
            SELECT e.request_params->>'recording_ids' FROM bronze_api_enrichments e
            JOIN enrichment_pipeline_runs r ON r.id = e.run_id
            WHERE r.triggered_by = :t AND e.api_provider = 'acousticbrainz'"""),
                {"t": tag},
            )
            .scalars()
            .all()
        )
    answered = [r for r in ab if r.status in ("found", "not_found")]
    assert len(answered) >= 10, ab
    assert sum(r.api_calls for r in ab) < len(answered)
    assert asked and all(";" not in ids for ids in asked)


def test_same_message_twice_adds_nothing(worker: Any, engine: Engine) -> None:
    """A redelivered envelope inserts no bronze row, opens no job and no second silver row."""
    row = catalogue_rows(1, offset=40)[0]
    envelope = {
        "kind": "track",
        "source": "it-dupes",
        "source_url": "https://example.test/t/1",
        "scraper_version": "it-1",
        "artist_name": row["artist"],
        "track_title": row["title"],
        "raw_json": {"n": 1},
    }
    tag1, tag2 = f"it:{uuid.uuid4().hex[:8]}", f"it:{uuid.uuid4().hex[:8]}"
    run_and_wait(engine, [envelope, envelope], tag1)
    run_and_wait(engine, [envelope], tag2)
    with engine.connect() as conn:
        bronze = conn.execute(
            text("SELECT count(*) FROM bronze_scraped_tracks WHERE source = 'it-dupes'")
        ).scalar_one()
        jobs = conn.execute(
            text(
                "SELECT count(*) FROM enrichment_jobs j JOIN enrichment_pipeline_runs r "
                "ON r.id = j.run_id WHERE r.triggered_by IN (:a, :b)"
            ),
            {"a": tag1, "b": tag2},
        ).scalar_one()
        silver = conn.execute(
            text("SELECT count(*) FROM silver_enriched_tracks WHERE isrc = :i"), {"i": row["isrc"]}
        ).scalar_one()
    assert (bronze, jobs, silver) == (1, 1, 1)


def test_provider_down_next_priority_wins(worker: Any, engine: Engine, sandbox: Any) -> None:
    """With Beatport answering 503, the key comes from a lower priority and provenance says so."""
    rows = catalogue_rows(3, offset=50)
    tag = f"it:{uuid.uuid4().hex[:8]}"
    sandbox.configure("beatport", down=True)
    try:
        run_and_wait(engine, [_setlist(rows, tag)], tag)
    finally:
        restore_provider(engine, sandbox, "beatport")
    silver = _silver_for(engine, tag)
    assert [s.key for s in silver] == [r["key"] for r in rows]
    with engine.connect() as conn:
        providers = (
            conn.execute(
                text(
                    "SELECT DISTINCT p.current_provider FROM field_provenance p "
                    "WHERE p.silver_track_id = ANY(:ids) AND p.metadata_field = 'key'"
                ),
                {"ids": [s.id for s in silver]},
            )
            .scalars()
            .all()
        )
        beatport_errors = conn.execute(
            text("""
            SELECT count(*) FROM enrichment_transformations t
            JOIN enrichment_pipeline_runs r ON r.id = t.run_id
            WHERE r.triggered_by = :t AND t.provider_used = 'beatport' AND NOT t.success
              AND t.metadata_field = 'key'"""),
            {"t": tag},
        ).scalar_one()
    assert "beatport" not in providers and providers
    assert beatport_errors == 3


def test_throttling_provider_is_retried_to_completion(
    worker: Any, engine: Engine, sandbox: Any
) -> None:
    """MusicBrainz answering 503 above 2 req/s: lookups back off and retry, every record merges."""
    rows = catalogue_rows(8, offset=60)
    tag = f"it:{uuid.uuid4().hex[:8]}"
    before = sandbox.stats().get("musicbrainz", {}).get("over_limit", 0)
    sandbox.configure("musicbrainz", rate_limit_per_second=2)
    try:
        run_and_wait(engine, [_setlist(rows, tag)], tag, timeout=240)
    finally:
        sandbox.configure("musicbrainz", rate_limit_per_second=None)
    throttled = sandbox.stats().get("musicbrainz", {}).get("over_limit", 0) - before
    with engine.connect() as conn:
        status = dict(
            conn.execute(
                text("""
            SELECT l.status, count(*) FROM enrichment_lookups l
            JOIN enrichment_jobs j ON j.id = l.job_id
            JOIN enrichment_pipeline_runs r ON r.id = j.run_id
            WHERE r.triggered_by = :t AND l.provider = 'musicbrainz' GROUP BY l.status"""),
                {"t": tag},
            ).all()
        )
    assert throttled > 0, "the sandbox never throttled: the test proves nothing"
    assert status.get("found") == 8 and "failed" not in status
    assert len(_silver_for(engine, tag)) == 8


def test_parallel_mode_cost_and_cross_source_dedup(worker: Any, engine: Engine) -> None:
    """genre in parallel mode asks Last.fm in round one; priced calls add up on the run; the same
    track scraped by two sources becomes one silver row listing both bronze rows, looked up
    once."""
    row = catalogue_rows(1, offset=70)[0]
    tag = f"it:{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE metadata_enrichment_config SET waterfall_mode = 'parallel' "
                "WHERE metadata_field = 'genre'"
            )
        )
        conn.execute(
            text(
                "UPDATE enrichment_providers SET cost_per_call_usd = 0.002 "
                "WHERE provider_name = 'lastfm'"
            )
        )
    envelopes = [
        {
            "kind": "track",
            "source": source,
            "source_url": f"https://example.test/{source}",
            "scraper_version": "it-1",
            "artist_name": row["artist"],
            "track_title": row["title"],
            "raw_json": {"source": source},
        }
        for source in ("it-source-a", "it-source-b")
    ]
    try:
        run_and_wait(engine, envelopes, tag)
    finally:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE metadata_enrichment_config SET waterfall_mode = "
                    "'sequential' WHERE metadata_field = 'genre'"
                )
            )
            conn.execute(
                text(
                    "UPDATE enrichment_providers SET cost_per_call_usd = 0 "
                    "WHERE provider_name = 'lastfm'"
                )
            )
    with engine.connect() as conn:
        lastfm = conn.execute(
            text("""
            SELECT l.round, l.api_calls, l.cost_usd FROM enrichment_lookups l
            JOIN enrichment_jobs j ON j.id = l.job_id
            JOIN enrichment_pipeline_runs r ON r.id = j.run_id
            WHERE r.triggered_by = :t AND l.provider = 'lastfm'"""),
            {"t": tag},
        ).all()
        run = conn.execute(
            text(
                "SELECT total_api_calls, total_api_cost_usd, waterfall_config_snapshot "
                "FROM enrichment_pipeline_runs WHERE triggered_by = :t"
            ),
            {"t": tag},
        ).one()
        silver = conn.execute(
            text(
                "SELECT bronze_id, ARRAY(SELECT x.bronze_id FROM silver_track_sightings x "
                "WHERE x.silver_id = t.id) AS sightings FROM silver_enriched_tracks t "
                "WHERE isrc = :i"
            ),
            {"i": row["isrc"]},
        ).all()
    # Issue 17: the second source's sighting waits for the first one's lookups (single
    # flight), so Last.fm is asked once, in round one, for both.
    assert [r.round for r in lastfm] == [1]
    calls = sum(r.api_calls for r in lastfm)
    assert calls >= 1 and float(run.total_api_cost_usd) == round(0.002 * calls, 4)
    assert run.waterfall_config_snapshot["genre"]["waterfall_mode"] == "parallel"
    assert len(silver) == 1 and len(silver[0].sightings) == 1
