"""Issue 17 item 4 on real PostgreSQL (each test rolled back): the scheduled re-enrichment asks
stale fields again, oldest first, inside each provider's budget, leaving headroom for ingest."""

from __future__ import annotations

import uuid
from collections import Counter

from sqlalchemy import text
from sqlalchemy.orm import Session

from pipeline.enrich import create_jobs
from pipeline.reenrich import budgets, plan_reenrichment
from pipeline.runs import load_plan, start_run
from tests.db.test_enrich_once import _bronze, _drive, _first_sighting

_ALL_FRESH = text(
    """
    INSERT INTO silver_field_checks (silver_track_id, metadata_field, checked_at, config_hash)
    SELECT s.id, c.metadata_field, now(), field_config_hash(to_jsonb(c))
    FROM silver_enriched_tracks s CROSS JOIN metadata_enrichment_config c
    ON CONFLICT (silver_track_id, metadata_field) DO UPDATE SET
        checked_at = now(), config_hash = EXCLUDED.config_hash
    """
)


def test_budget_is_a_share_of_the_limit_and_never_more_than_ingest_left(
    db_session: Session,
) -> None:
    """1 call/s over 100 s: 20 calls at share 0.2; with 90 calls made in the period (ingest),
    only the 10 left; a provider with no limit gets the default; scrapers get none."""
    db_session.execute(
        text(
            "UPDATE enrichment_providers SET rate_limit_per_second = 1, rate_limit_per_day = NULL "
            "WHERE provider_name IN ('beatport', 'spotify')"
        )
    )
    db_session.execute(
        text(
            "UPDATE enrichment_providers SET rate_limit_per_second = NULL, "
            "rate_limit_per_day = NULL WHERE provider_name = 'discogs'"
        )
    )
    db_session.execute(text("UPDATE enrichment_lookups SET updated_at = now() - interval '1 day'"))
    run = str(start_run(db_session, "incremental", "test"))
    create_jobs(db_session, run, [_bronze(db_session, f"Budget {uuid.uuid4().hex[:6]}", "X")])
    db_session.execute(
        text(
            "UPDATE enrichment_lookups l SET api_calls = 90, updated_at = now() "
            "FROM enrichment_jobs j WHERE j.id = l.job_id AND j.run_id = :r "
            "AND l.provider = 'spotify'"
        ),
        {"r": run},
    )
    got = budgets(db_session, period_s=100, share=0.2, default=7)
    assert got["beatport"] == 20 and got["spotify"] == 10 and got["discogs"] == 7
    assert "mixesdb" not in got and "1001tracklists" not in got


def test_stale_fields_are_re_enriched_oldest_first_within_budget(db_session: Session) -> None:
    """bpm fresh for a day; three tracks' bpm checks are 5, 3 and 2 days old; a budget of two
    calls at bpm's first provider re-enriches the two oldest only, asking that provider for
    bpm alone, and their checks are fresh again; the third waits for a later beat."""
    tag = uuid.uuid4().hex[:6]
    silvers = [_first_sighting(db_session, f"Old {tag} {i}", "Song")[1] for i in range(3)]
    db_session.execute(_ALL_FRESH)
    db_session.execute(
        text(
            "UPDATE metadata_enrichment_config SET fresh_for = '1 day' "
            "WHERE metadata_field = 'bpm'"
        )
    )
    for silver, age in zip(silvers, (5, 3, 2), strict=True):
        db_session.execute(
            text(
                "UPDATE silver_field_checks SET checked_at = now() - make_interval(days => :d) "
                "WHERE silver_track_id = :s AND metadata_field = 'bpm'"
            ),
            {"s": silver, "d": age},
        )
    probe = str(start_run(db_session, "incremental", "test"))
    first = load_plan(db_session, probe).rules["bpm"].providers()[0]
    done = plan_reenrichment(db_session, budget={first: 2}, max_tracks=10)
    assert done.tracks == 2 and done.skipped_for_budget == 1 and done.spent == {first: 2}
    assert set(done.next.lookups) == {first}
    assert done.run_id is not None
    planned = db_session.execute(
        text(
            "SELECT j.reuse_silver_id::text, l.provider, l.fields FROM enrichment_lookups l "
            "JOIN enrichment_jobs j ON j.id = l.job_id WHERE j.run_id = :r"
        ),
        {"r": done.run_id},
    ).all()
    assert {p[0] for p in planned} == set(silvers[:2])
    assert all(p[1] == first and "bpm" in p[2] for p in planned)
    calls: Counter[str] = Counter()
    _drive(db_session, done.next, calls)
    assert calls == Counter({first: 2})
    fresh_again = db_session.execute(
        text(
            "SELECT silver_track_id::text FROM silver_field_checks "
            "WHERE metadata_field = 'bpm' AND checked_run_id = :r"
        ),
        {"r": done.run_id},
    ).scalars()
    assert set(fresh_again) == set(silvers[:2])
    nothing = plan_reenrichment(db_session, budget={first: 0}, max_tracks=10)
    assert nothing.tracks == 0 and nothing.skipped_for_budget == 1  # the third, no budget
