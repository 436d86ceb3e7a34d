"""A live replay chunk (``force_re_enrichment``) never holds a transaction across provider calls.

Pins issue #16's defect: ``replay_jobs`` ran every round of a live chunk inside one
transaction, so each provider call of round two on happened with the job and lookup rows that
round one recorded still locked (and a connection idle in transaction). The task runs here for
real on the test database (Celery eager, so its gold upsert runs too); only the provider is
answered in-process, with the ``LookupResult`` shape every client returns
(``providers/contract.py``). During each call the test asks PostgreSQL itself whether any
session of the database is inside a transaction, and whether the chunk's rows can be locked.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text

from pipeline.enrich import LookupInput, LookupOutcome, create_jobs, record_outcomes
from pipeline.runs import start_run
from providers.contract import FieldValue, LookupResult
from tests.conftest import engine_on, migrated_database
from tests.db._helpers import insert_scraped_track


@pytest.fixture(scope="module")
def own_db(postgres_available: None) -> Iterator[str]:
    """A database of this module's own: the task commits (runs, bronze, silver), and other
    tests of the worker's shared database select "the last N runs"."""
    with migrated_database("sn_replay_live") as url:
        yield url


@pytest.fixture
def engine(own_db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """``DATABASE_URL`` (and ``db.engine``) on this module's database, and an engine on it."""
    from db.engine import dispose_engine

    monkeypatch.setenv("DATABASE_URL", own_db)
    dispose_engine()
    try:
        with engine_on(own_db) as eng:
            yield eng
    finally:
        dispose_engine()


def _setup(tag: str, n: int) -> tuple[str, list[str]]:
    from db.engine import session_scope

    with session_scope() as session:
        bronzes = [
            insert_scraped_track(session.connection(), f"Live {tag}", f"Track {i}")
            for i in range(n)
        ]
        run = str(start_run(session, "replay", f"replay:{tag}"))
        nxt = create_jobs(session, run, bronzes, replay_mode="live")
    return run, sorted({j for js in nxt.lookups.values() for j in js})


def _result(li: LookupInput, bpm: float) -> LookupResult:
    values = {"bpm": FieldValue("bpm", bpm, 0.99, bpm)} if "bpm" in li.fields else {}
    return LookupResult(li.provider, "found" if values else "not_found", values)


def _open_transactions(engine: Engine, job_ids: list[str]) -> tuple[int, bool]:
    """(sessions of this database inside a transaction, whether the chunk's job and lookup
    rows can be locked right now without waiting)."""
    with engine.connect() as conn:
        busy = conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'"
            )
        ).scalar_one()
        try:
            conn.execute(
                text(
                    "SELECT 1 FROM enrichment_jobs WHERE id = ANY(CAST(:ids AS uuid[])) "
                    "FOR UPDATE NOWAIT"
                ),
                {"ids": job_ids},
            )
            conn.execute(
                text(
                    "SELECT 1 FROM enrichment_lookups WHERE job_id = ANY(CAST(:ids AS uuid[])) "
                    "FOR UPDATE NOWAIT"
                ),
                {"ids": job_ids},
            )
            lockable = True
        except Exception:
            lockable = False
        conn.rollback()
    return int(busy), lockable


@pytest.fixture
def eager() -> Iterator[None]:
    """Celery runs what the task enqueues (its gold upsert) in-process, on the test database."""
    from tasks.app import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        yield
    finally:
        app.conf.task_always_eager = before


def test_live_replay_asks_providers_with_no_transaction_open(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, eager: None
) -> None:
    """Every provider call of every round of a live chunk sees no session of the database in
    a transaction and can lock the chunk's job and lookup rows; the chunk still merges."""
    import tasks.replay as replay_tasks

    tag = uuid.uuid4().hex[:8]
    run, jobs = _setup(tag, 3)
    seen: list[tuple[str, int, bool]] = []

    def fake_live(session: Any, li: LookupInput) -> LookupResult:
        busy, lockable = _open_transactions(engine, jobs)
        seen.append((li.provider, busy, lockable))
        return _result(li, 126.0)

    monkeypatch.setattr(replay_tasks, "live_lookup", fake_live)
    merged = replay_tasks.replay_jobs(run, jobs, "live", False)

    assert merged == 3
    providers = {p for p, _, _ in seen}
    assert len(providers) > 1 and len(seen) >= 3 * len(providers)  # several rounds were asked
    assert [s for s in seen if s[1] or not s[2]] == []
    with engine.connect() as conn:
        statuses = conn.execute(
            text("SELECT DISTINCT status FROM enrichment_jobs WHERE run_id = :r"), {"r": run}
        ).scalars().all()
    assert statuses == ["merged"]


def test_live_replay_keeps_the_answer_a_concurrent_claimer_recorded_first(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, eager: None
) -> None:
    """While the chunk asks a provider, another worker (a redelivered chunk, a swept lookup)
    records the same lookup first: the chunk's own answer then adds nothing (one enrichment
    transformation per field, the first answer's value), and running the chunk again (a
    redelivery) changes nothing."""
    import tasks.replay as replay_tasks
    from db.engine import session_scope

    tag = uuid.uuid4().hex[:8]
    run, jobs = _setup(tag, 1)
    raced: list[str] = []

    def fake_live(session: Any, li: LookupInput) -> LookupResult:
        if "bpm" in li.fields and not raced:
            raced.append(li.provider)
            with session_scope() as other:  # the concurrent claimer, committing first
                record_outcomes(other, [LookupOutcome(li, result=_result(li, 99.0))], 1)
        return _result(li, 126.0)

    monkeypatch.setattr(replay_tasks, "live_lookup", fake_live)
    assert replay_tasks.replay_jobs(run, jobs, "live", False) == 1
    assert replay_tasks.replay_jobs(run, jobs, "live", False) == 0  # redelivered: all merged

    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT output_value FROM enrichment_transformations WHERE run_id = :r "
                "AND transformation_type = 'enrichment' AND metadata_field = 'bpm' "
                "AND provider_used = :p"
            ),
            {"r": run, "p": raced[0]},
        ).scalars().all()
    assert raced and [float(v) for v in rows] == [99.0]
