"""The lookup answer journal (migration 018, ``pipeline.lookups.journal``) and the request reply
journal (021, ``pipeline.lookups.replies``) on real PostgreSQL.

A worker killed after its provider answered, before the batch was recorded: the answers are in
the journal, and the next delivery of the same lookups records them without one request to the
provider (counted by the sandbox, which serves the real wire formats). Recording empties the
journal.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from db.engine import dispose_engine, session_scope
from pipeline.enrich import create_jobs, record_outcomes
from pipeline.lookups import journal, journal_writes
from pipeline.lookups.clients import ask, cached_clients, provider_client, reset_clients
from pipeline.lookups.engine import ask_leased, lease, record_batch
from pipeline.lookups.outcome import LookupInput, LookupOutcome
from pipeline.matching import TrackQuery
from pipeline.runs import start_run
from pipeline.scraper_providers import SCRAPER_PROVIDERS
from providers.contract import FieldValue, LookupResult, RawResponse
from providers.errors import TransientError
from providers.registry import available_providers
from providers.sandbox import SandboxHandle, start_in_thread
from tests.conftest import engine_on, migrated_database
from tests.db._helpers import insert_bronze_track

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxHandle]:
    handle = start_in_thread()
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def journal_db(postgres_available: None) -> Iterator[str]:
    """A database of this module's own: its tests commit bronze rows, which the rolled-back
    tests sharing the run's database would count (daily quality metrics)."""
    with migrated_database("sn_journal") as url:
        yield url


@pytest.fixture
def engine(journal_db: str) -> Iterator[Engine]:
    with engine_on(journal_db) as eng:
        yield eng


@pytest.fixture
def live(
    journal_db: str, sandbox: SandboxHandle, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SandboxHandle]:
    """Provider clients and ``db.engine`` of this process pointed at the sandbox and the
    module's database; limits and breakers in memory."""
    monkeypatch.setenv("DATABASE_URL", journal_db)
    dispose_engine()
    for key, value in sandbox.env.items():
        monkeypatch.setenv(key, value)
    for name in available_providers():
        monkeypatch.setenv(f"SONGNODES_{name.upper()}_RATE_LIMIT_PER_SECOND", "1000")
    monkeypatch.delenv("REDIS_URL", raising=False)
    reset_clients()
    try:
        yield sandbox
    finally:
        for client in cached_clients():
            close = getattr(client, "close", None)
            if close is not None:
                close()
        reset_clients()
        dispose_engine()


def _lookups(sandbox: SandboxHandle, first: int, n: int) -> tuple[str, list[str]]:
    """``n`` catalogue tracks from ``first`` ingested and planned; an HTTP provider of round
    one and its jobs (each test its own tracks: a second sighting would wait for the first)."""
    tracks = sandbox.state.catalogue.tracks[first : first + n]
    with session_scope() as session:
        bronzes = [
            str(
                insert_bronze_track(
                    session.connection(),
                    source="journal-test",
                    source_url=f"https://example.test/{uuid.uuid4()}",
                    raw_json=json.dumps({"isrc": t.base["isrc"]}),
                    artist_name=t.base["artist"],
                    track_title=t.base["title"],
                )
            )
            for t in tracks
        ]
        run = str(start_run(session, "manual", "test-journal"))
        nxt = create_jobs(session, run, bronzes)
    provider = sorted(p for p in nxt.lookups if p not in SCRAPER_PROVIDERS)[0]
    return provider, nxt.lookups[provider]


def _requests(sandbox: SandboxHandle, provider: str) -> int:
    return int(sandbox.stats().get(provider, {}).get("requests", 0))


def _rows(engine: Engine, table: str, job_ids: list[str]) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text(f"SELECT count(*) FROM {table} WHERE job_id = ANY(CAST(:ids AS uuid[]))"),
                {"ids": job_ids},
            ).scalar_one()
        )


def _journal_rows(engine: Engine, job_ids: list[str]) -> int:
    return _rows(engine, "enrichment_lookup_answers", job_ids)


def _reply_rows(engine: Engine, job_ids: list[str]) -> int:
    return _rows(engine, "enrichment_request_replies", job_ids)


def _as_json(o: LookupOutcome) -> object:
    return json.loads(journal.encode(o))


def test_a_journaled_answer_is_recorded_without_asking_the_provider_again(
    live: SandboxHandle, engine: Engine
) -> None:
    """Asked once, journaled, never recorded (the worker died); the redelivered message
    (same task id) asks nothing, records the journaled outcomes exactly as they were, and
    counts the calls they cost; recording empties the journal."""
    provider, jobs = _lookups(live, 1, 3)
    holder = f"task-{uuid.uuid4()}"
    client = provider_client(provider)
    first = ask_leased(client, lease(jobs, provider, holder), attempts=1, can_retry=True)
    assert len(first.outcomes) == 3 and not first.retry_ids
    asked = _requests(live, provider)
    assert asked > 0
    assert _journal_rows(engine, jobs) == 3  # ... and here the worker is SIGKILLed

    again = lease(jobs, provider, holder)  # the redelivery takes its own lease over
    assert again.inputs == [] and len(again.known) == 3
    second = ask_leased(client, again, attempts=1, can_retry=True)
    assert _requests(live, provider) == asked, "a journaled lookup asked the provider again"
    by_job = {o.li.job_id: o for o in first.outcomes}
    assert {o.li.job_id: _as_json(o) for o in second.outcomes} == {
        job: _as_json(o) for job, o in by_job.items()
    }
    assert [o.li for o in second.outcomes] == [by_job[o.li.job_id].li for o in second.outcomes]

    record_batch(second.outcomes, attempts=1)
    assert _journal_rows(engine, jobs) == 0
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT job_id::text, status, api_calls FROM enrichment_lookups "
                "WHERE job_id = ANY(CAST(:ids AS uuid[])) AND provider = :p"
            ),
            {"ids": jobs, "p": provider},
        ).all()
    calls = {
        o.li.job_id: sum(r.calls for r in (o.result.responses if o.result else o.responses))
        for o in first.outcomes
    }
    assert {r.job_id: r.api_calls for r in rows} == calls
    assert all(r.status != "pending" for r in rows)


def test_recording_empties_the_journal(live: SandboxHandle, engine: Engine) -> None:
    """``record_outcomes`` deletes the journal rows of what it records, in its transaction,
    also the row of a lookup another delivery recorded first; a journal write for a lookup
    that is no longer pending adds nothing."""
    provider, jobs = _lookups(live, 20, 2)
    leased = lease(jobs, provider, "holder-a")
    outcomes = [
        LookupOutcome(li, result=LookupResult(provider, "not_found"), latency_ms=5)
        for li in leased.inputs
    ]
    assert all(journal.journal_answer(o, "holder-a") for o in outcomes)
    assert _journal_rows(engine, jobs) == 2
    with session_scope() as session:
        record_outcomes(session, outcomes[:1], attempts=1)
    assert _journal_rows(engine, jobs) == 1
    with session_scope() as session:
        record_outcomes(session, outcomes, attempts=1)  # the first is no longer pending
    assert _journal_rows(engine, jobs) == 0
    journal.journal_answer(outcomes[0], "late")  # recorded meanwhile: nothing to keep
    assert _journal_rows(engine, jobs) == 0


def test_the_journal_rebuilds_every_part_of_an_outcome() -> None:
    """encode/decode: values with confidence and raw, rejected, unavailable, replaced id,
    match confidence, latency, error, status and the responses with their calls."""
    li = LookupInput(
        "00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-000000000002",
        "00000000-0000-0000-0000-000000000003", "spotify", ["bpm", "spotify_id"],
        TrackQuery("A", "T"), None, Decimal("0.001"),
    )  # fmt: skip
    response = RawResponse(
        "GET https://x.test/v1/tracks/1", {"id": "1", "api_key": "[REDACTED]"}, 200,
        {"name": "T", "nul": "a\x00b", "list": [1, 2.5, None]}, 12.5, "v1", 0,
    )  # fmt: skip
    result = LookupResult(
        "spotify", "found",
        values={"bpm": FieldValue("bpm", 128.0, 0.9, "128"),
                "spotify_id": FieldValue("spotify_id", "new", 1.0, {"raw": "old"})},
        match_confidence=0.93, responses=[response], rejected={"key": "bad key"},
        unavailable={"energy": "403"},
        replaced_id={"stale_id": "old", "reason": "404", "replaced_by": "new", "via": "isrc"},
    )  # fmt: skip
    for outcome in (
        LookupOutcome(li, result=result, latency_ms=42),
        LookupOutcome(li, error="AuthError: refused", responses=[response]),
    ):
        back = journal.decode(li, json.loads(journal.encode(outcome)))
        assert _as_json(back) == _as_json(outcome)
        assert back.li is li and back.latency_ms == outcome.latency_ms
        assert back.error == outcome.error and back.status == outcome.status
        if outcome.result is not None:
            assert back.result is not None
            assert back.result.values == outcome.result.values
            assert back.result.replaced_id == outcome.result.replaced_id
            # NUL is stored as the six characters \u0000, as bronze_api_enrichments stores it.
            assert back.result.responses[0].body["nul"] == "a\\u0000b"
            assert back.result.responses[0].calls == 0


def test_the_sweeper_prunes_answers_of_lookups_closed_without_recording(
    db_session: Session,
) -> None:
    """A journal row whose lookup was closed some other way (the reaper failing its job) is
    deleted by ``prune`` (run by every sweep); a pending lookup's row stays."""
    bronze = insert_bronze_track(
        db_session.connection(), source_url=f"https://example.test/{uuid.uuid4()}",
        artist_name="Journal Artist", track_title=f"Pruned {uuid.uuid4().hex[:6]}",
    )  # fmt: skip
    run = str(start_run(db_session, "manual", "test-journal-prune"))
    nxt = create_jobs(db_session, run, [str(bronze)])
    (job,) = {j for jobs in nxt.lookups.values() for j in jobs}
    providers = sorted(nxt.lookups)[:2]
    assert len(providers) == 2, "the seeded waterfall asks several providers in round one"
    for p in providers:
        db_session.execute(
            text(
                "INSERT INTO enrichment_lookup_answers (job_id, provider, answer) "
                "VALUES (:j, :p, '{}')"
            ),
            {"j": job, "p": p},
        )
    db_session.execute(
        text("UPDATE enrichment_lookups SET status = 'failed' WHERE job_id = :j AND provider = :p"),
        {"j": job, "p": providers[0]},
    )
    assert journal.prune(db_session) == 1
    left = (
        db_session.execute(
            text("SELECT provider FROM enrichment_lookup_answers WHERE job_id = :j"), {"j": job}
        )
        .scalars()
        .all()
    )
    assert left == [providers[1]]


def _answered(sandbox: SandboxHandle, provider: str) -> tuple[int, int]:
    stats = sandbox.stats().get(provider, {})
    return int(stats.get("answered", 0)), int(stats.get("answered_again", 0))


def test_a_lookup_retried_part_way_does_not_ask_its_answered_requests_again(
    live: SandboxHandle, engine: Engine
) -> None:
    """Migration 021 (``pipeline.lookups.replies``). The first delivery's requests are
    answered and then the lookup fails transiently, as when its last request meets a 500 three
    times over (raised here after the real requests: the sandbox's random errors cannot pick
    the last one). Each answered request is in the reply journal; the task's retry (same
    holder) is answered from it: the sandbox answers nothing more and no request twice, the
    outcomes are what the first asking found, and recording empties the journal."""
    provider, jobs = _lookups(live, 40, 3)
    holder = f"task-{uuid.uuid4()}"
    client = provider_client(provider)
    found: dict[str, LookupResult] = {}

    def answered_then_failed(li: LookupInput) -> LookupResult:
        found[li.job_id] = ask(li)
        raise TransientError("HTTP 500 (the lookup's next request)", provider=li.provider)

    first = ask_leased(
        client, lease(jobs, provider, holder), attempts=1, can_retry=True,
        call=answered_then_failed,
    )  # fmt: skip
    assert first.outcomes == [] and set(first.retry_ids) == set(jobs) == set(found)
    answered, again = _answered(live, provider)
    assert answered > 0 and _reply_rows(engine, jobs) >= 3
    assert _journal_rows(engine, jobs) == 0  # no lookup was complete

    retried = lease(jobs, provider, holder)
    assert len(retried.inputs) == 3 and len(retried.replies) == _reply_rows(engine, jobs)
    second = ask_leased(client, retried, attempts=2, can_retry=True)
    assert _answered(live, provider) == (answered, again), "an answered request was asked again"
    assert not second.retry_ids and second.replayed == len(retried.replies)
    for o in second.outcomes:
        assert o.result is not None and o.error is None
        assert o.result.status == found[o.li.job_id].status
        assert o.result.values == found[o.li.job_id].values
        # The same GETs, each standing for the one request it cost (the first asking also
        # fetched the OAuth token, a POST, which the client now holds).
        assert [(r.endpoint, r.calls) for r in o.result.responses] == [
            (r.endpoint, r.calls) for r in found[o.li.job_id].responses if r.endpoint[:4] == "GET "
        ]

    record_batch(second.outcomes, attempts=2)
    assert _reply_rows(engine, jobs) == 0 and _journal_rows(engine, jobs) == 0


def test_requests_that_got_no_answer_are_not_kept(live: SandboxHandle, engine: Engine) -> None:
    """Every request answered 500 (the sandbox's error knob): the lookups are left to retry
    and the reply journal holds nothing for them; the sweeper's prune removes the replies of
    a lookup closed without being recorded."""
    provider, jobs = _lookups(live, 50, 2)
    live.configure(provider, errors={"500": 1.0})
    try:
        batch = ask_leased(
            provider_client(provider), lease(jobs, provider, "holder-500"), attempts=1,
            can_retry=True,
        )  # fmt: skip
    finally:
        live.configure(provider, errors={})
    assert set(batch.retry_ids) == set(jobs) and _reply_rows(engine, jobs) == 0

    batch = ask_leased(provider_client(provider), lease(jobs, provider, "holder-500"),
                       attempts=2, can_retry=True)  # fmt: skip
    assert len(batch.outcomes) == 2 and _reply_rows(engine, jobs) >= 2
    with session_scope() as session:
        session.execute(
            text(
                "UPDATE enrichment_lookups SET status = 'failed' "
                "WHERE job_id = ANY(CAST(:ids AS uuid[])) AND provider = :p"
            ),
            {"ids": jobs, "p": provider},
        )
        assert journal.prune(session) >= 2
    assert _reply_rows(engine, jobs) == 0


def test_a_journal_write_that_meets_a_dead_connection_is_written_later(
    live: SandboxHandle, engine: Engine
) -> None:
    """PostgreSQL closes the journal's connection (every other backend of the database
    terminated, as a restart does): the next answer is not lost but kept, and written by
    ``flush`` (``lease`` calls it) once a connection is back."""
    provider, jobs = _lookups(live, 60, 2)
    leased = lease(jobs, provider, "holder-backlog")
    first, second = (
        LookupOutcome(li, result=LookupResult(provider, "not_found"), latency_ms=1)
        for li in leased.inputs
    )
    assert journal.journal_answer(first, "holder-backlog")  # the connection is open now
    with engine.connect() as conn:
        killed = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
    assert killed >= 1
    assert not journal.journal_answer(second, "holder-backlog")
    assert _journal_rows(engine, [second.li.job_id]) == 0
    assert journal_writes.flush()
    assert _journal_rows(engine, jobs) == 2
    assert journal_writes.flush()  # nothing left: flushing again writes nothing
    assert _journal_rows(engine, jobs) == 2
