"""OpenLineage run events (pipeline.lineage_events) from real runs opened and closed in a real
PostgreSQL, sent by openlineage-python's HTTP transport to a local receiver.

Shape reference: the OpenLineage spec's RunEvent (eventType, eventTime, run.runId, job
{namespace, name}, inputs/outputs with inputFacets/outputFacets), as the HTTP transport POSTs it
to ``/api/v1/lineage`` (what Marquez serves)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from pipeline import lineage_events
from pipeline.runs import finish_run_if_done, start_run
from tests._receiver import Receiver, receiver
from tests.db._helpers import insert_scraped_track, insert_silver_track

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def lineage_engine(postgres_available: None) -> Iterator[Engine]:
    from tests.conftest import engine_on, migrated_database

    with migrated_database("sn_lineage") as url, engine_on(url) as eng:
        yield eng


@pytest.fixture
def marquez(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    with receiver() as rec:
        monkeypatch.setenv("OPENLINEAGE_URL", rec.url)
        monkeypatch.delenv("OPENLINEAGE_DISABLED", raising=False)
        lineage_events.reset_client()
        try:
            yield rec
        finally:
            lineage_events.reset_client()


def _close_with_job(engine: Engine, run: str, status: str) -> None:
    with Session(engine) as s:
        bronze = insert_scraped_track(s.connection(), f"Lin {uuid.uuid4().hex[:6]}", "T")
        silver = (
            insert_silver_track(s.connection(), f"Lin {uuid.uuid4().hex[:6]}", "T")
            if status == "merged"
            else None
        )
        s.execute(
            text("INSERT INTO enrichment_jobs (run_id, bronze_track_id, status, silver_track_id) "
                 "VALUES (:r, :b, :s, :silver)"),
            {"r": run, "b": bronze, "s": status, "silver": silver},
        )  # fmt: skip
        assert finish_run_if_done(s, run)
        s.commit()


def _by_state(rec: Receiver, run: str) -> dict[str, dict[str, Any]]:
    return {body["eventType"]: body for _, body in rec.posts if body["run"]["runId"] == run}


def test_a_run_emits_start_and_complete_with_datasets_counts_and_snapshot(
    lineage_engine: Engine, marquez: Receiver
) -> None:
    with Session(lineage_engine) as s:
        run = str(start_run(s, "manual", "lineage-test"))
        assert marquez.posts == []  # nothing before the commit
        s.commit()
    assert list(_by_state(marquez, run)) == ["START"]
    _close_with_job(lineage_engine, run, "merged")
    events = _by_state(marquez, run)
    assert set(events) == {"START", "COMPLETE"}
    assert {path for path, _ in marquez.posts} == {"/api/v1/lineage"}
    start, done = events["START"], events["COMPLETE"]
    database = lineage_engine.url.database
    for ev in (start, done):
        assert ev["job"] == {"namespace": "songnodes", "name": "songnodes.manual", "facets": {}}
        assert ev["inputs"][0]["namespace"] == "postgres://127.0.0.1:5432"
        assert [d["name"] for d in ev["inputs"]] == [
            f"{database}.public.bronze_scraped_tracks",
            f"{database}.public.bronze_api_enrichments",
        ]
        assert [d["name"] for d in ev["outputs"]] == [
            f"{database}.public.silver_enriched_tracks",
            f"{database}.public.field_provenance",
            f"{database}.public.gold_track_analytics",
        ]
    # The waterfall snapshot the run used, as stored on the run.
    with lineage_engine.connect() as conn:
        snapshot = conn.execute(
            text("SELECT waterfall_config_snapshot FROM enrichment_pipeline_runs WHERE id = :r"),
            {"r": run},
        ).scalar_one()
    facet = start["run"]["facets"]["songnodes_waterfall"]

    def no_nulls(v: Any) -> Any:  # the OpenLineage serializer leaves out null members
        if isinstance(v, dict):
            return {k: no_nulls(x) for k, x in v.items() if x is not None}
        return v

    assert facet["waterfall"] == no_nulls(snapshot) and snapshot
    assert facet["_producer"] and facet["_schemaURL"].startswith("https://")
    assert done["inputs"][0]["inputFacets"]["inputStatistics"]["rowCount"] == 1
    assert done["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"] == 1
    assert "inputStatistics" not in start["inputs"][0]["inputFacets"]


def test_a_failed_run_emits_fail_with_the_error(lineage_engine: Engine, marquez: Receiver) -> None:
    with Session(lineage_engine) as s:
        run = str(start_run(s, "incremental", "lineage-test"))
        s.commit()
    _close_with_job(lineage_engine, run, "failed")
    events = _by_state(marquez, run)
    assert set(events) == {"START", "FAIL"}
    assert events["FAIL"]["run"]["facets"]["errorMessage"]["message"] == "1 records failed"
    assert events["FAIL"]["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"] == 0


def test_a_rolled_back_run_emits_nothing(lineage_engine: Engine, marquez: Receiver) -> None:
    with Session(lineage_engine) as s:
        run = str(start_run(s, "manual", "lineage-test"))
        s.rollback()
        s.execute(text("SELECT 1"))
        s.commit()  # a later commit on the same session must not send the dropped event
    assert _by_state(marquez, run) == {}


def test_off_unless_a_transport_is_configured(
    lineage_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("OPENLINEAGE_URL", "OPENLINEAGE_CONFIG", "OPENLINEAGE__TRANSPORT__TYPE"):
        monkeypatch.delenv(var, raising=False)
    assert not lineage_events.enabled()
    with receiver() as rec:
        monkeypatch.setenv("OPENLINEAGE_URL", rec.url)
        monkeypatch.setenv("OPENLINEAGE_DISABLED", "true")
        assert not lineage_events.enabled()
        with Session(lineage_engine) as s:
            start_run(s, "manual", "lineage-test")
            assert lineage_events._PENDING not in s.info
            s.commit()
    assert rec.posts == []
