"""A task that finally fails leaves its input in ``failed_work`` (tasks/base.py, issue 20).

The hook is the one Celery calls (``Task.on_failure``) on the real tasks, writing through
``session_scope`` to the real PostgreSQL; and every task retries transient database and broker
errors before it gets there.
"""

from __future__ import annotations

from typing import Any

import kombu.exceptions
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError


def _rows(engine: Engine, task_name: str) -> list[Any]:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT * FROM failed_work WHERE task_name = :n ORDER BY created_at"),
            {"n": task_name},
        ).all()


def test_every_task_retries_transient_errors_with_backoff() -> None:
    import importlib

    from tasks.app import app
    from tasks.base import TRANSIENT_ERRORS

    for module in app.conf.include:
        importlib.import_module(module)
    names = [n for n in app.tasks if n.startswith("tasks.")]
    assert "tasks.ingest.ingest_envelope" in names and "tasks.enrich.lookup" in names
    for name in names:
        task = app.tasks[name]
        retried = tuple(getattr(task, "autoretry_for", ()))
        for error in (OperationalError, kombu.exceptions.OperationalError):
            assert any(issubclass(error, e) for e in retried), f"{name} does not retry {error}"
        assert task.retry_backoff, f"{name} retries without backoff"
    assert OperationalError in TRANSIENT_ERRORS


def test_a_final_failure_keeps_the_envelope(database_url_env: str, engine: Engine) -> None:
    """ingest_envelope gives up on a database error: the envelope is in failed_work, marked
    transient (so the sweeper re-runs it); the same input failing again reuses the row."""
    from tasks.ingest import ingest_envelope

    envelope = {"kind": "track", "source": "t-failed", "artist_name": "Kept", "track_title": "X",
                "source_url": "https://example.test/failed/1", "scraper_version": "1",
                "raw_json": {}}  # fmt: skip
    exc = OperationalError("INSERT ...", {}, Exception("the database system is starting up"))
    ingest_envelope.on_failure(exc, "task-1", (envelope, "scraper"), {}, None)
    rows = [r for r in _rows(engine, "tasks.ingest.ingest_envelope") if r.task_id == "task-1"]
    assert len(rows) == 1
    row = rows[0]
    assert row.args == [envelope, "scraper"] and row.kwargs == {}
    assert row.transient and row.status == "failed"
    assert "the database system is starting up" in row.error
    ingest_envelope.on_failure(exc, "task-1", (envelope, "scraper"), {}, None)
    assert len([r for r in _rows(engine, "tasks.ingest.ingest_envelope")
                if r.args == [envelope, "scraper"]]) == 1  # fmt: skip


def test_a_poison_failure_is_kept_but_not_transient(database_url_env: str, engine: Engine) -> None:
    from tasks.merge import merge_jobs

    merge_jobs.on_failure(ValueError("bad job"), "task-2", (["job-x"],), {}, None)
    row = next(r for r in _rows(engine, "tasks.merge.merge_jobs") if r.task_id == "task-2")
    assert not row.transient and row.args == [["job-x"]]


def test_beat_tasks_keep_no_failed_work(database_url_env: str, engine: Engine) -> None:
    from tasks.maintenance import sweep_stalled

    sweep_stalled.on_failure(RuntimeError("x"), "task-3", (), {}, None)
    assert not [r for r in _rows(engine, "tasks.maintenance.sweep_stalled")
                if r.task_id == "task-3"]  # fmt: skip
