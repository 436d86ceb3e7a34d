"""A stale scraper id in provenance and silver (issue 14, item 4), on real PostgreSQL.

A 1001Tracklists-style bronze row carries a Spotify id that the (sandbox) Spotify API answers
404 for, and the track's ISRC. The real Spotify client falls back to the ISRC; the recorded
``spotify_id`` transformation keeps the stale id and what replaced it, and silver stores the
replacement; a later round's lookups carry the replacement.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from pipeline.enrich import LookupOutcome, create_jobs, lookup_inputs, record_outcomes
from pipeline.merge import merge_batch
from pipeline.runs import start_run
from providers.base import HttpProvider, RetryPolicy
from providers.breaker import BreakerConfig, CircuitBreaker, MemoryBreakerStore
from providers.contract import FieldValue, LookupResult
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
    step = record_outcomes(db_session, [LookupOutcome(li, result=result)], attempts=1)
    # Every other provider knows nothing here; the job goes round by round to its merge.
    pending = {p: j for p, j in nxt.lookups.items() if p != "spotify"}
    while pending or step.lookups:
        pending = pending or step.lookups
        for other, jobs in sorted(pending.items()):
            (oli,) = lookup_inputs(db_session, jobs, other)
            blank = LookupResult(other, "not_found")
            step = record_outcomes(db_session, [LookupOutcome(oli, result=blank)], attempts=1)
        pending = {}
    (merged,) = merge_batch(db_session, step.merges)
    row = db_session.execute(
        text(
            "SELECT input_value, output_value, success FROM enrichment_transformations"
            " WHERE run_id = :r AND bronze_id = :b AND metadata_field = 'spotify_id'"
            " AND transformation_type = 'enrichment'"
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
    silver_id = db_session.execute(
        text("SELECT spotify_id FROM silver_enriched_tracks WHERE id = :s"),
        {"s": merged.silver_track_id},
    ).scalar_one()
    assert silver_id == real  # gold's required spotify_id is the replacement


def test_a_later_round_uses_the_replacement_not_the_scraped_id(db_session: Session) -> None:
    """The scraped MusicBrainz id was stale and MusicBrainz answered with another: the next
    round's lookups (AcousticBrainz looks up by MBID) carry MusicBrainz's id, not the scraped
    one. Other providers' ids found in round one do not override the scraped ones."""
    stale_mbid = str(uuid.uuid4())
    new_mbid = str(uuid.uuid4())
    raw = {"musicbrainz_id": stale_mbid, "beatport_id": "1200345"}
    bronze = str(
        insert_bronze_track(
            db_session.connection(),
            source="1001tracklists",
            source_url=f"https://example.test/{uuid.uuid4()}",
            raw_json=json.dumps(raw),
            artist_name=f"Stale {uuid.uuid4().hex[:6]}",
            track_title="Ids",
        )
    )
    run = str(start_run(db_session, "manual", "test"))
    nxt = create_jobs(db_session, run, [bronze])
    assert "musicbrainz" in nxt.lookups, "the seeded waterfall asks MusicBrainz in round one"
    step = None
    for provider, jobs in sorted(nxt.lookups.items()):
        (li,) = lookup_inputs(db_session, jobs, provider)
        assert li.query.provider_ids["musicbrainz"] == stale_mbid
        values = {}
        if provider == "musicbrainz":
            values["musicbrainz_id"] = FieldValue("musicbrainz_id", new_mbid, 0.95, {})
        if provider == "spotify":  # another provider's idea of a Beatport id: a hint only
            values["beatport_id"] = FieldValue("beatport_id", "999", 0.99, {})
        result = LookupResult(provider, "found" if values else "not_found", values=values)
        step = record_outcomes(db_session, [LookupOutcome(li, result=result)], 1)
    assert step is not None and step.lookups, "the seeded waterfall has a second round"
    for provider, jobs in step.lookups.items():
        (li,) = lookup_inputs(db_session, jobs, provider)
        assert li.query.provider_ids["musicbrainz"] == new_mbid, provider
        assert li.query.provider_ids["beatport"] == "1200345", provider
