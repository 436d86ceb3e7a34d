"""The hot reads of pending lookups go by primary key, whatever the statistics say.

Pending lookups live for seconds, so the last ANALYZE rarely counts them. Written as a join
filtered on ``status = 'pending'``, these statements were planned on the partial index
``ix_enrichment_lookups_pending`` and read every pending lookup of the pipeline for each batch
(a 10k replay spent most of its database time there). The test recreates that state in its own
rolled-back transaction: statistics taken with no pending row, then thousands of pending rows,
and checks each statement's real plan and result.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from pipeline.enrich import _LOCK_PENDING_SQL, create_jobs
from pipeline.lookups.inputs import _INPUTS_SQL
from pipeline.replay import _PENDING_SQL
from pipeline.runs import start_run
from tests.db._helpers import insert_scraped_track

# The statement as it was: the control that this test's state really sets the trap.
JOIN_FORM = text(
    """
    SELECT l.job_id::text, l.provider FROM enrichment_lookups l
    JOIN unnest(CAST(:jobs AS uuid[]), CAST(:providers AS text[])) AS k(job_id, provider)
      ON k.job_id = l.job_id AND k.provider = l.provider
    WHERE l.status = 'pending' ORDER BY l.job_id, l.provider FOR NO KEY UPDATE OF l
    """
)


def _plan(conn: Connection, statement: Any, params: dict[str, Any]) -> str:
    # The generic plan is the one a prepared statement ends up with (psycopg prepares a
    # statement after five executions); the custom plan is what the first five get.
    lines = []
    for mode in ("force_generic_plan", "force_custom_plan"):
        conn.execute(text(f"SET LOCAL plan_cache_mode = {mode}"))
        lines += [r[0] for r in conn.execute(text(f"EXPLAIN {statement.text}"), params)]
    conn.execute(text("RESET plan_cache_mode"))
    return "\n".join(lines)


def test_pending_lookups_are_read_by_primary_key_with_stale_statistics(
    db_session: Session,
) -> None:
    conn = db_session.connection()
    conn.execute(text("UPDATE enrichment_lookups SET status = 'found' WHERE status = 'pending'"))
    conn.execute(text("ANALYZE enrichment_lookups"))  # statistics: no pending lookup at all
    run = str(start_run(db_session, "manual", "test"))
    tag = uuid.uuid4().hex[:6]
    bronzes = [insert_scraped_track(conn, f"Plan {tag}", f"Track {i}") for i in range(400)]
    nxt = create_jobs(db_session, run, bronzes)
    jobs = sorted({j for js in nxt.lookups.values() for j in js})
    # Thousands of other pending lookups, as in a busy pipeline (not counted by ANALYZE).
    conn.execute(
        text(
            "INSERT INTO enrichment_lookups (job_id, provider, round, fields) "
            "SELECT j.id, 'bench-' || g, 1, ARRAY['bpm'] FROM enrichment_jobs j, "
            "generate_series(1, 10) g WHERE j.id = ANY(CAST(:ids AS uuid[]))"
        ),
        {"ids": jobs},
    )
    asked = sorted(nxt.lookups)[0]
    few = sorted(nxt.lookups[asked])[:20]
    cases = [
        (_LOCK_PENDING_SQL, {"jobs": few, "providers": [asked] * len(few)}),
        (_INPUTS_SQL, {"jobs": few, "providers": [asked] * len(few)}),
        (_PENDING_SQL, {"ids": few}),
    ]
    assert "ix_enrichment_lookups_pending" in _plan(conn, JOIN_FORM, cases[0][1])
    for statement, params in cases:
        plan = _plan(conn, statement, params)
        assert "ix_enrichment_lookups_pending" not in plan, plan
        assert "pk_enrichment_lookups" in plan, plan
    locked = conn.execute(_LOCK_PENDING_SQL, cases[0][1]).all()
    assert [tuple(r) for r in locked] == [(j, asked) for j in few]
    inputs = conn.execute(_INPUTS_SQL, cases[1][1]).all()
    assert sorted(r.job_id for r in inputs) == few
    pending = conn.execute(_PENDING_SQL, {"ids": few}).all()
    assert len(pending) == len(few) * (len(nxt.lookups) + 10)
    assert {p for p, _ in pending} == set(nxt.lookups) | {f"bench-{g}" for g in range(1, 11)}
