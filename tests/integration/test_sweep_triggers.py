"""When the sweeper runs (issue 20): at once on a broker reconnect, every interval from beat."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Engine, text

from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration


def _mark(engine: Engine, name: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT at FROM maintenance_marks WHERE name = :n"), {"n": name}
        ).scalar_one_or_none()


def test_a_reconnect_sends_an_immediate_sweep(worker: Any, engine: Engine) -> None:
    """The consumer step runs on every (re)connect; on a reconnect (``restart_count > 0``) it
    sends a sweep with age 0, which the real worker runs (its mark moves)."""
    from tasks.app import SweepOnConnect

    before = _mark(engine, "sweep_reconnect")
    step = SweepOnConnect(SimpleNamespace())
    step.start(SimpleNamespace(restart_count=1))
    wait_for(
        lambda: (at := _mark(engine, "sweep_reconnect")) is not None
        and (before is None or at > before),
        60,
        "the reconnect sweep to run",
    )


def _sweep_entry(env: dict[str, str]) -> dict[str, Any]:
    """The beat entry as a fresh process with ``env`` computes it (no reload in this one)."""
    import json
    import os
    import subprocess
    import sys

    from tests.integration.conftest import ROOT

    base = {k: v for k, v in os.environ.items() if k != "SONGNODES_SWEEP_INTERVAL_S"}
    code = (
        "import json, celeryconfig; "
        "e = celeryconfig.beat_schedule['sweep-stalled-records']; "
        "print(json.dumps({'schedule': e['schedule'], 'expires': e['options']['expires']}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=base | env, cwd=ROOT, capture_output=True,
        text=True, check=True,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def test_sweep_interval_is_a_setting() -> None:
    assert _sweep_entry({"SONGNODES_SWEEP_INTERVAL_S": "42"}) == {"schedule": 42.0, "expires": 42.0}
    assert _sweep_entry({})["schedule"] == 60.0, "default: about a minute"


def test_the_reaper_never_acts_before_ten_sweeps() -> None:
    from tasks import maintenance

    sweep_cycle = maintenance.SWEEP_INTERVAL_S + maintenance.SWEEP_AFTER_S
    assert 10 * sweep_cycle <= maintenance.REAP_AFTER_S
    assert maintenance.REAP_GIVE_UP_S >= 2 * maintenance.REAP_AFTER_S


def test_a_lookup_leased_at_the_reconnect_is_resent_when_its_lease_runs_out(
    worker: Any, engine: Engine
) -> None:
    """A leased lookup whose message the broker lost (a retry waiting out its countdown holds
    its lease) is left alone by the reconnect sweep; the sweep then sends one more sweep for
    when the leases alive now run out, which re-sends it: healed within the lease, not at the
    next beat sweep (this worker runs no beat: without that sweep nothing would send it)."""
    import uuid

    from sqlalchemy.orm import Session

    from pipeline.enrich import create_jobs
    from pipeline.ingest import ingest_messages
    from pipeline.recovery import lease_lookups
    from pipeline.runs import start_run
    from tasks.maintenance import sweep_stalled
    from tests.integration.conftest import catalogue_rows

    row = catalogue_rows(1, offset=590)[0]
    tag = uuid.uuid4().hex[:8]
    with Session(engine) as session:
        result = ingest_messages(
            session,
            [{"kind": "track", "source": "it-lease", "source_url": f"https://example.test/{tag}",
              "scraper_version": "1", "artist_name": row["artist"], "track_title": row["title"],
              "raw_json": {"tag": tag}}],
        )  # fmt: skip
        run_id = start_run(session, "incremental", f"it-lease:{tag}")
        nxt = create_jobs(session, run_id, result.track_ids)  # never sent: "lost"
        provider, (job_id, *_) = sorted(nxt.lookups.items())[0]
        assert lease_lookups(session, [job_id], provider, "a-lost-retry", 8.0) == {job_id}
        session.execute(text("DELETE FROM maintenance_marks WHERE name = 'sweep_reconnect'"))
        session.commit()

    def lookup() -> Any:
        with engine.connect() as conn:
            return conn.execute(
                text("SELECT status, leased_by FROM enrichment_lookups "
                     "WHERE job_id = :j AND provider = :p"),
                {"j": job_id, "p": provider},
            ).one()  # fmt: skip

    sweep_stalled.apply_async(kwargs={"older_than_s": 0, "reason": "reconnect"})
    wait_for(lambda: _mark(engine, "sweep_reconnect") is not None, 30, "the reconnect sweep")
    assert lookup().leased_by == "a-lost-retry", "the reconnect sweep left the leased lookup"
    wait_for(lambda: lookup().status != "pending", 40, "the lookup re-sent after its lease")
