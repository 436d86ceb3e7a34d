"""Follow work through the pipeline from the database (no result backend needed)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

__all__ = ["Progress", "progress_for_tag", "wait_until"]


@dataclass(frozen=True)
class Progress:
    """Where the runs started under one tag (``triggered_by``) are."""

    runs: int
    runs_open: int
    jobs: int
    jobs_done: int
    quarantined_since_start: int

    @property
    def finished(self) -> bool:
        return self.runs_open == 0 and self.jobs_done >= self.jobs


def progress_for_tag(session: Session, tag: str) -> Progress:
    row = session.execute(
        text("""
            SELECT count(DISTINCT r.id) AS runs,
                   count(DISTINCT r.id) FILTER (WHERE r.run_status = 'running') AS runs_open,
                   count(j.id) AS jobs,
                   count(j.id) FILTER (WHERE j.status IN ('merged', 'failed')) AS jobs_done
            FROM enrichment_pipeline_runs r
            LEFT JOIN enrichment_jobs j ON j.run_id = r.id
            WHERE r.triggered_by = :tag"""),
        {"tag": tag},
    ).one()
    return Progress(row.runs, row.runs_open, row.jobs, row.jobs_done, 0)


def wait_until(check: Callable[[], bool], timeout_s: float, interval_s: float = 0.25) -> bool:
    """Poll ``check`` until true or timeout (sleeps between polls; never spins)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval_s)
    return check()
