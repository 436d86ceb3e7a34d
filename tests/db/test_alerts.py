"""Alert rules (migration 015, pipeline.alerts) against a real, freshly migrated PostgreSQL.

A database of this module's own (not the session's shared one) so "nothing fires on a quiet
database" and exact values do not depend on what other tests left behind; each test runs in a
transaction rolled back afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis as redis_lib
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from pipeline.alerts import CONDITIONS, evaluate, firing, load_rules
from pipeline.runs import start_run
from tests.db._helpers import insert_scraped_track, insert_silver_track

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def alert_engine(postgres_available: None) -> Iterator[Engine]:
    from tests.conftest import engine_on, migrated_database

    with migrated_database("sn_alerts") as url, engine_on(url) as eng:
        yield eng


@pytest.fixture
def session(alert_engine: Engine) -> Iterator[Session]:
    with alert_engine.connect() as conn:
        outer = conn.begin()
        s = Session(bind=conn, join_transaction_mode="create_savepoint")
        try:
            yield s
        finally:
            s.close()
            outer.rollback()


def _events(session: Session) -> list[tuple[str, str, str]]:
    return [
        (r.event, r.condition, r.subject)
        for r in session.execute(
            text("SELECT event, condition, subject FROM alert_events ORDER BY id")
        )
    ]


def _job(session: Session, run: str) -> str:
    bronze = insert_scraped_track(session.connection(), f"Alert {uuid.uuid4().hex[:6]}", "T")
    return str(
        session.execute(
            text(
                "INSERT INTO enrichment_jobs (run_id, bronze_track_id) VALUES (:r, :b) RETURNING id"
            ),
            {"r": run, "b": bronze},
        ).scalar_one()
    )


def test_seeded_rules_cover_every_condition_with_the_design_thresholds(session: Session) -> None:
    """Every condition has a '*' rule; the seed document's thresholds are the defaults."""
    rules = load_rules(session)
    assert {c for c, s in rules if s == "*"} == set(CONDITIONS)
    assert rules[("provider_success_rate", "*")].threshold == 0.70
    assert rules[("provider_success_rate", "*")].comparison == "below"
    assert rules[("field_completeness", "*")].threshold == 80
    assert rules[("failed_runs", "*")].threshold == 0
    assert rules[("failed_runs", "*")].window_s == 86400
    assert rules[("stuck_runs", "*")].threshold == 21600  # SONGNODES_REAP_AFTER_S default


def test_quiet_database_fires_nothing(session: Session) -> None:
    result = evaluate(session)
    assert result.firing == [] and result.changes == []
    assert _events(session) == []
    # It did measure: the quarantine and every provider's breaker.
    conditions = {m.condition for m in result.measurements}
    assert {"quarantine_growth", "breaker_open"} <= conditions


def _make_everything_fire(session: Session) -> dict[str, str]:
    """One breach of each condition; returns the subjects expected."""
    failed = str(start_run(session, "manual", "alerts-test"))
    session.execute(text("SELECT complete_pipeline_run(:r, 'failed')"), {"r": failed})
    stuck = str(start_run(session, "incremental", "alerts-test"))
    session.execute(
        text("UPDATE enrichment_pipeline_runs SET started_at = now() - interval '7 hours' "
             "WHERE id = :r"),
        {"r": stuck},
    )  # fmt: skip
    # 20 answered deezer lookups, 5 found: 25% success (seed: alert under 70%).
    for i in range(20):
        session.execute(
            text(
                "INSERT INTO enrichment_lookups (job_id, provider, round, fields, status) "
                "VALUES (:j, 'deezer', 1, ARRAY['bpm'], :s)"
            ),
            {"j": _job(session, stuck), "s": "found" if i < 5 else "not_found"},
        )
    # A lookup pending for an hour on the tidal queue.
    session.execute(
        text(
            "INSERT INTO enrichment_lookups (job_id, provider, round, fields, created_at) "
            "VALUES (:j, 'tidal', 1, ARRAY['bpm'], now() - interval '1 hour')"
        ),
        {"j": _job(session, stuck)},
    )
    # 10 silver tracks, 7 with a BPM: 70% (seed: alert under 80%).
    for i in range(10):
        insert_silver_track(
            session.connection(), f"Fill {uuid.uuid4().hex[:6]}", "T",
            **({"bpm": 124.0} if i < 7 else {}),
        )  # fmt: skip
    for _ in range(11):
        session.execute(
            text(
                "INSERT INTO ingest_quarantine (reason, raw_bytes, byte_length, content_sha256,"
                " received_via) VALUES ('bad', 'x', 1, :h, 'task')"
            ),
            {"h": uuid.uuid4().hex},
        )
    session.execute(
        text("UPDATE enrichment_providers SET health_status = 'down' "
             "WHERE provider_name = 'discogs'")
    )
    for day in range(8):  # seven days at 0.90, then today at 0.70: a drop of 0.20
        session.execute(
            text(
                "INSERT INTO data_quality_metrics (metric_date, data_layer, avg_quality_score)"
                " VALUES (current_date - :d, 'silver', :q)"
            ),
            {"d": day, "q": 0.70 if day == 0 else 0.90},
        )
    return {"failed": failed, "stuck": stuck}


def test_each_condition_fires_once_and_resolves(session: Session) -> None:
    """Every condition fires with its value and threshold recorded; a second evaluation records
    nothing new; fixing the cause records the resolution."""
    ids = _make_everything_fire(session)
    # An operator silences energy completeness with a per-subject override.
    session.execute(
        text(
            "INSERT INTO alert_rules (condition, subject, threshold, comparison, enabled)"
            " VALUES ('field_completeness', 'energy', 80, 'below', false)"
        )
    )
    result = evaluate(session)
    got = {(a.condition, a.subject): (a.value, a.threshold) for a in result.firing}
    assert got[("failed_runs", "manual")] == (1.0, 0.0)
    assert got[("stuck_runs", ids["stuck"])][0] >= 7 * 3600
    assert got[("stuck_runs", ids["stuck"])][1] == 21600
    assert got[("provider_success_rate", "deezer")] == (0.25, 0.70)
    assert got[("field_completeness", "bpm")] == (70.0, 80.0)
    assert ("field_completeness", "energy") not in got
    assert got[("queue_lag", "tidal")][0] >= 3600
    assert got[("quarantine_growth", "ingest")] == (11.0, 10.0)
    assert got[("breaker_open", "discogs")] == (1.0, 0.0)
    assert ("breaker_open", "spotify") not in got
    assert got[("quality_trend", "silver")][0] == pytest.approx(0.20)
    assert {c for c, _ in got} == set(CONDITIONS)
    events = _events(session)
    assert len(events) == len(got) and {e for e, _, _ in events} == {"firing"}
    row = session.execute(
        text("SELECT value, threshold FROM alert_events WHERE condition = 'field_completeness' "
             "AND subject = 'bpm'")
    ).one()  # fmt: skip
    assert (float(row.value), float(row.threshold)) == (70.0, 80.0)

    again = evaluate(session)
    assert again.changes == [] and len(_events(session)) == len(events)
    assert {(a.condition, a.subject) for a in again.firing} == set(got)

    # Fix three causes: the breaker closes, the stuck run is closed, tidal answers.
    session.execute(
        text("UPDATE enrichment_providers SET health_status = 'healthy' "
             "WHERE provider_name = 'discogs'")
    )  # fmt: skip
    session.execute(text("SELECT complete_pipeline_run(:r, 'completed')"), {"r": ids["stuck"]})
    session.execute(text("UPDATE enrichment_lookups SET status = 'found' WHERE provider = 'tidal'"))
    fixed = evaluate(session)
    resolved = {(c.condition, c.subject) for c in fixed.changes if c.event == "resolved"}
    assert resolved == {
        ("breaker_open", "discogs"),
        ("stuck_runs", ids["stuck"]),
        ("queue_lag", "tidal"),
    }
    assert all(c.event == "resolved" for c in fixed.changes)
    breaker = next(c for c in fixed.changes if c.condition == "breaker_open")
    assert breaker.value == 0.0 and breaker.threshold == 0.0
    still = {(a.condition, a.subject) for a in firing(session)}
    assert still == set(got) - resolved
    assert _events(session)[-3:] == [("resolved", c, s) for c, s in sorted(resolved)]


def test_min_samples_and_threshold_changes_take_effect_without_restart(session: Session) -> None:
    """Under min_samples nothing fires; lowering a threshold in SQL is read by the next
    evaluation; disabling a rule resolves what it fired."""
    run = str(start_run(session, "manual", "alerts-test"))
    for status in ("found", "not_found", "not_found"):  # 33% of only 3 lookups
        session.execute(
            text(
                "INSERT INTO enrichment_lookups (job_id, provider, round, fields, status) "
                "VALUES (:j, 'lastfm', 1, ARRAY['bpm'], :s)"
            ),
            {"j": _job(session, run), "s": status},
        )
    assert not [a for a in evaluate(session).firing if a.condition == "provider_success_rate"]
    session.execute(
        text("UPDATE alert_rules SET min_samples = 3 WHERE condition = 'provider_success_rate'")
    )
    fired = [a for a in evaluate(session).firing if a.condition == "provider_success_rate"]
    assert [(a.subject, a.value) for a in fired] == [("lastfm", 0.333)]
    session.execute(
        text("UPDATE alert_rules SET enabled = false WHERE condition = 'provider_success_rate'")
    )
    result = evaluate(session)
    assert [(c.event, c.subject) for c in result.changes] == [("resolved", "lastfm")]


def test_breaker_state_is_read_from_redis(session: Session, redis_url: str) -> None:
    """With Redis the breaker's own hash (what every worker shares) decides, not the registry."""
    from providers.breaker import CircuitBreaker, RedisBreakerStore

    client = redis_lib.Redis.from_url(redis_url.rsplit("/", 1)[0] + "/13")
    breaker = CircuitBreaker("getsongbpm", store=RedisBreakerStore(client))
    try:
        for _ in range(breaker.config.failure_threshold):
            breaker.record_failure()
        result = evaluate(session, client)
        assert ("breaker_open", "getsongbpm") in {(a.condition, a.subject) for a in result.firing}
        breaker.reset()
        result = evaluate(session, client)
        assert ("resolved", "breaker_open", "getsongbpm") in {
            (c.event, c.condition, c.subject) for c in result.changes
        }
    finally:
        breaker.reset()


def test_concurrent_evaluations_record_each_change_once(postgres_available: None) -> None:
    """Beat and a cron'd ``songnodes alerts`` at the same moment: the advisory lock makes the
    second wait for the first's commit, so it sees the firing as already recorded."""
    import threading

    from tests.conftest import engine_on, migrated_database

    with migrated_database("sn_alerts_lock") as url, engine_on(url) as eng:
        with eng.begin() as conn:
            for _ in range(11):
                conn.execute(
                    text("INSERT INTO ingest_quarantine (reason, raw_bytes, byte_length,"
                         " content_sha256, received_via) VALUES ('bad', 'x', 1, :h, 'task')"),
                    {"h": uuid.uuid4().hex},
                )  # fmt: skip
        first = Session(eng)
        evaluate(first)  # holds the lock until it commits
        second_changes: list[int] = []

        def second() -> None:
            with Session(eng) as s:
                second_changes.append(len(evaluate(s).changes))
                s.commit()

        t = threading.Thread(target=second)
        t.start()
        t.join(1.0)
        assert t.is_alive()  # waiting on the lock, not evaluating from the same old state
        first.commit()
        first.close()
        t.join(30)
        assert second_changes == [0]
        with eng.connect() as conn:
            events = conn.execute(text("SELECT event, condition FROM alert_events")).all()
        assert [tuple(e) for e in events] == [("firing", "quarantine_growth")]
