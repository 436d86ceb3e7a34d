"""Issue 17 through a real worker: many sightings of new tracks arriving together (two setlists
and a batch of chart entries sent at once) make one set of lookups per track; a re-scrape of
the same rows makes none, and every sighting still reaches its silver track and playlist."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from sqlalchemy import Engine, text

from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TRACKS = 5


def _names(tag: str) -> list[tuple[str, str]]:
    # Names no other test uses (the session's database is shared): the sandbox knows none of
    # them, so every provider is asked and answers not found, which is still a lookup.
    return [(f"Flight Artist {tag}", f"Flight Song {i} {tag}") for i in range(TRACKS)]


def _setlist(names: list[tuple[str, str]], tag: str, n: int) -> dict[str, Any]:
    return {
        "kind": "playlist",
        "source": "it-setlists",
        "source_url": f"https://example.test/sets/{tag}/{n}",
        "scraper_version": "it-1",
        "playlist_name": f"Flight set {tag} {n}",
        "artist_name": "Integration DJ",
        "event_date": "2025-11-01",
        "raw_json": {
            "tracks": [
                {"position": i, "artist": a, "title": t} for i, (a, t) in enumerate(names, 1)
            ]
        },
    }


def _chart(names: list[tuple[str, str]], tag: str, n: int) -> list[dict[str, Any]]:
    return [
        {
            "kind": "track",
            "source": "it-charts",
            "source_url": f"https://example.test/charts/{tag}/{n}/{i}",
            "scraper_version": "it-1",
            "artist_name": a,
            "track_title": t,
            "raw_json": {"artist": a, "title": t},
        }
        for i, (a, t) in enumerate(names)
    ]


_PER_RUN = text(
    """
    SELECT count(DISTINCT j.id) AS jobs,
           count(DISTINCT j.id) FILTER (WHERE j.status = 'merged') AS merged,
           count(l.job_id) AS lookups,
           count(DISTINCT l.job_id) AS jobs_with_lookups,
           count(DISTINCT j.silver_track_id) AS silver
    FROM enrichment_pipeline_runs r JOIN enrichment_jobs j ON j.run_id = r.id
    LEFT JOIN enrichment_lookups l ON l.job_id = j.id
    WHERE r.triggered_by = ANY(CAST(:tags AS text[]))
    """
)


def _send_together(tags: list[str], names: list[tuple[str, str]], tag: str) -> None:
    from tasks.ingest import ingest_batch

    ingest_batch.apply_async(([_setlist(names, tag, 1)], tags[0], "task"))
    ingest_batch.apply_async(([_setlist(names, tag, 2)], tags[1], "task"))
    ingest_batch.apply_async((_chart(names, tag, 3) + _chart(names, tag, 4), tags[2], "task"))


def _done(engine: Engine, tags: list[str]) -> bool:
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT count(*), count(*) FILTER (WHERE run_status = 'running') "
                "FROM enrichment_pipeline_runs WHERE triggered_by = ANY(CAST(:t AS text[]))"
            ),
            {"t": tags},
        ).one()
    return row[0] == len(tags) and row[1] == 0


def test_sightings_arriving_together_share_one_lookup_and_a_rescrape_makes_none(
    worker: Any, engine: Engine
) -> None:
    tag = uuid.uuid4().hex[:8]
    names = _names(tag)
    first = [f"it17:{tag}:{n}" for n in range(3)]
    _send_together(first, names, tag)
    wait_for(lambda: _done(engine, first), 180, "the first sightings' runs")
    with engine.connect() as conn:
        got = conn.execute(_PER_RUN, {"tags": first}).one()
        repeats = conn.execute(
            text(
                """
                SELECT max(n) FROM (
                  SELECT count(*) AS n FROM enrichment_lookups l
                  JOIN enrichment_jobs j ON j.id = l.job_id
                  JOIN enrichment_pipeline_runs r ON r.id = j.run_id
                  JOIN bronze_scraped_tracks b ON b.id = j.bronze_track_id
                  WHERE r.triggered_by = ANY(CAST(:t AS text[]))
                  GROUP BY lower(b.track_title), l.provider) x
                """
            ),
            {"t": first},
        ).scalar_one()
    # 4 sightings of each track (two setlists, two chart entries): one job per track looked up
    assert got.jobs == 4 * TRACKS and got.merged == 4 * TRACKS
    assert got.jobs_with_lookups == TRACKS and repeats == 1
    assert got.silver == TRACKS

    def members() -> list[Any]:
        with engine.connect() as conn:
            return list(
                conn.execute(
                    text(
                        "SELECT p.playlist_name, count(DISTINCT pt.track_id) "
                        "FROM silver_playlist_tracks pt "
                        "JOIN silver_enriched_playlists p ON p.id = pt.playlist_id "
                        "WHERE p.playlist_name LIKE :n GROUP BY p.playlist_name"
                    ),
                    {"n": f"Flight set {tag}%"},
                ).all()
            )

    # A setlist is merged by its own gold message after the runs close: wait for both.
    wait_for(lambda: len(members()) == 2, 60, "both setlists in silver")
    assert sorted(m[1] for m in members()) == [TRACKS, TRACKS]

    again = [f"it17:{tag}:again:{n}" for n in range(3)]
    _send_together(again, names, f"{tag}-again")
    wait_for(lambda: _done(engine, again), 180, "the re-scrape's runs")
    with engine.connect() as conn:
        got2 = conn.execute(_PER_RUN, {"tags": again}).one()
        silver_first = set(
            conn.execute(
                text(
                    "SELECT DISTINCT j.silver_track_id FROM enrichment_jobs j "
                    "JOIN enrichment_pipeline_runs r ON r.id = j.run_id "
                    "WHERE r.triggered_by = ANY(CAST(:t AS text[]))"
                ),
                {"t": first},
            ).scalars()
        )
        silver_again = set(
            conn.execute(
                text(
                    "SELECT DISTINCT j.silver_track_id FROM enrichment_jobs j "
                    "JOIN enrichment_pipeline_runs r ON r.id = j.run_id "
                    "WHERE r.triggered_by = ANY(CAST(:t AS text[]))"
                ),
                {"t": again},
            ).scalars()
        )
    assert got2.jobs == 4 * TRACKS and got2.merged == 4 * TRACKS
    assert got2.lookups == 0  # every field fresh: no provider asked at all
    assert silver_again == silver_first


def test_the_reenrichment_beat_task_asks_only_stale_fields_on_the_real_worker(
    worker: Any, engine: Engine
) -> None:
    """bpm made stale (fresh for one second, our two tracks' bpm checks the oldest): the beat
    task, run by the real worker, opens a re-enrichment run in which our tracks' jobs plan
    lookups only at providers bpm's waterfall plans, reuse every other field, merge, and leave
    bpm fresh again. (Other tracks of the session's database may be re-enriched too.)"""
    from tasks.ingest import ingest_batch
    from tasks.reenrich import reenrich_stale

    tag = uuid.uuid4().hex[:8]
    runs = [f"it17:{tag}:seed"]
    ingest_batch.apply_async((_chart(_names(tag)[:2], tag, 9), runs[0], "task"))
    wait_for(lambda: _done(engine, runs), 120, "the seed run")
    with engine.begin() as conn:
        ours = [
            str(r[0])
            for r in conn.execute(
                text(
                    "SELECT DISTINCT j.silver_track_id FROM enrichment_jobs j "
                    "JOIN enrichment_pipeline_runs r ON r.id = j.run_id WHERE r.triggered_by = :t"
                ),
                {"t": runs[0]},
            )
        ]
        before = {
            (str(sid), f)
            for sid, f in conn.execute(
                text(
                    "SELECT silver_track_id, metadata_field FROM silver_field_checks "
                    "WHERE silver_track_id = ANY(CAST(:s AS uuid[])) AND metadata_field <> 'bpm'"
                ),
                {"s": ours},
            )
        }
        conn.execute(
            text(
                "UPDATE silver_field_checks SET checked_at = '2000-01-01' "
                "WHERE metadata_field = 'bpm' AND silver_track_id = ANY(CAST(:s AS uuid[]))"
            ),
            {"s": ours},
        )
        conn.execute(
            text(
                "UPDATE metadata_enrichment_config SET fresh_for = '1 second' "
                "WHERE metadata_field = 'bpm'"
            )
        )
    try:
        time.sleep(1.5)
        reenrich_stale.apply_async(kwargs={"share": 1.0, "period_s": 600.0, "max_tracks": 50})

        def reenriched() -> bool:
            with engine.connect() as conn:
                return bool(
                    conn.execute(
                        text(
                            "SELECT count(*) FROM enrichment_pipeline_runs WHERE triggered_by = "
                            "'reenrich' AND run_status = 'completed' AND started_at > "
                            "(SELECT max(started_at) FROM enrichment_pipeline_runs "
                            " WHERE triggered_by = :t)"
                        ),
                        {"t": runs[0]},
                    ).scalar_one()
                )

        wait_for(reenriched, 120, "the re-enrichment run")
    finally:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE metadata_enrichment_config SET fresh_for = NULL "
                    "WHERE metadata_field = 'bpm'"
                )
            )
    with engine.connect() as conn:
        run_id, snapshot = conn.execute(
            text(
                "SELECT id, waterfall_config_snapshot FROM enrichment_pipeline_runs "
                "WHERE triggered_by = 'reenrich' ORDER BY started_at DESC LIMIT 1"
            )
        ).one()
        jobs = conn.execute(
            text(
                "SELECT j.status, j.reused_fields, j.reuse_silver_id, "
                "array_agg(l.provider) FILTER (WHERE l.provider IS NOT NULL) AS providers "
                "FROM enrichment_jobs j LEFT JOIN enrichment_lookups l ON l.job_id = j.id "
                "WHERE j.run_id = :r AND j.reuse_silver_id = ANY(CAST(:s AS uuid[])) "
                "GROUP BY j.id"
            ),
            {"r": run_id, "s": ours},
        ).all()
        checked = conn.execute(
            text(
                "SELECT count(*) FROM silver_field_checks WHERE checked_run_id = :r "
                "AND metadata_field = 'bpm' AND silver_track_id = ANY(CAST(:s AS uuid[]))"
            ),
            {"r": run_id, "s": ours},
        ).scalar_one()
    bpm_providers = {
        snapshot["bpm"][f"priority_{n}_provider"]
        for n in range(1, 5)
        if snapshot["bpm"].get(f"priority_{n}_provider")
    }
    assert len(ours) == 2 and len(jobs) == 2  # oldest first: both taken
    assert {j.status for j in jobs} == {"merged"}
    # every field checked before (all but bpm) is reused, bpm is not
    assert all(
        {(str(j.reuse_silver_id), f) for f in j.reused_fields}
        == {(s, f) for s, f in before if s == str(j.reuse_silver_id)}
        for j in jobs
    )
    assert all(j.providers and set(j.providers) <= bpm_providers for j in jobs)
    assert checked == 2  # bpm fresh again, from this run
