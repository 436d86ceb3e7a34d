"""A stale scraper id in provenance and silver (issue 14, item 4), on real PostgreSQL.

A 1001Tracklists-style bronze row carries a Spotify id that the (sandbox) Spotify API answers
404 for, and the track's ISRC. The real Spotify client falls back to the ISRC; the recorded
``spotify_id`` transformation keeps the stale id and what replaced it, and silver stores the
replacement.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from pipeline.enrich import LookupOutcome, create_jobs, lookup_inputs, record_outcomes
from pipeline.runs import start_run
from providers.base import HttpProvider, RetryPolicy
from providers.breaker import BreakerConfig, CircuitBreaker, MemoryBreakerStore
from providers.ratelimit import RateLimitConfig, RateLimiter
from providers.registry import _entry_points
from providers.sandbox import SandboxHandle, start_in_thread
from tests.db._helpers import insert_bronze_track
from tests.providers.conftest import settings_from_env

STALE = "4uLU6hMCjMI75M1A2tKUQC"  # a well-formed Spotify id the catalogue does not hold


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxHandle]:
    handle = start_in_thread()
    yield handle
    handle.stop()


def _spotify(sandbox: SandboxHandle) -> HttpProvider:
    cls = _entry_points()["spotify"].load()
    provider: HttpProvider = cls(
        settings_from_env("spotify", sandbox.env),
        breaker=CircuitBreaker("spotify", BreakerConfig(), store=MemoryBreakerStore()),
        limiter=RateLimiter("spotify", RateLimitConfig()),
        retry=RetryPolicy(),
        sleep=lambda _s: None,
    )
    return provider


def test_stale_spotify_id_is_replaced_and_recorded(
    db_session: Session, sandbox: SandboxHandle
) -> None:
    """The transformation's output is the replacement id; its input names the stale id, the
    reason and how the replacement was found; the 404 answer is among the stored responses."""
    track = next(t for t in sandbox.state.catalogue.tracks[1:] if not t.overrides)
    raw = {"spotify_id": STALE, "isrc": track.base["isrc"], "artist": track.base["artist"]}
    bronze = str(
        insert_bronze_track(
            db_session.connection(),
            source="1001tracklists",
            source_url=f"https://example.test/{uuid.uuid4()}",
            raw_json=json.dumps(raw),
            artist_name=track.base["artist"],
            track_title=track.base["title"],
        )
    )
    run = str(start_run(db_session, "manual", "test"))
    nxt = create_jobs(db_session, run, [bronze])
    assert "spotify" in nxt.lookups, "the seeded waterfall asks Spotify in round one"
    (li,) = lookup_inputs(db_session, nxt.lookups["spotify"], "spotify")
    assert li.query.provider_ids["spotify"] == STALE
    with _spotify(sandbox) as provider:
        result = provider.lookup(li.query, li.fields)
    record_outcomes(db_session, [LookupOutcome(li, result=result)], attempts=1)
    row = db_session.execute(
        text(
            "SELECT input_value, output_value, success FROM enrichment_transformations"
            " WHERE run_id = :r AND bronze_id = :b AND metadata_field = 'spotify_id'"
        ),
        {"r": run, "b": bronze},
    ).one()
    real = track.provider_id("spotify")
    assert row.success and row.output_value == real
    assert row.input_value["replaces"] == {
        "stale_id": STALE,
        "reason": "id lookup: HTTP 404",
        "replaced_by": real,
        "via": "isrc",
    }
    statuses = db_session.execute(
        text(
            "SELECT response_status FROM bronze_api_enrichments WHERE run_id = :r"
            " AND bronze_track_id = :b AND api_endpoint LIKE :e"
        ),
        {"r": run, "b": bronze, "e": f"%/tracks/{STALE}"},
    ).scalars().all()
    assert statuses == [404]
