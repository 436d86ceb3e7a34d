"""OpenLineage run events for pipeline runs (openlineage-python), so Marquez or DataHub can show
what fed each table.

Off unless a transport is configured: ``OPENLINEAGE_URL`` (HTTP, events to
``$OPENLINEAGE_URL/api/v1/lineage``), ``OPENLINEAGE_CONFIG`` (an openlineage.yml) or
``OPENLINEAGE__TRANSPORT__TYPE`` (the client's env-var configuration); ``OPENLINEAGE_DISABLED=true``
wins over all of them. When off, the hooks return before touching the database.

One enrichment run = one OpenLineage run (``runId`` = ``enrichment_pipeline_runs.id``) of job
``<OPENLINEAGE_NAMESPACE or songnodes>/songnodes.<run_type>``:

* START when the run opens, with the waterfall and provider snapshot the run uses as a run facet
  (``songnodes_waterfall``);
* COMPLETE (``completed``/``partial``) or FAIL (``failed``, with the run's critical errors as an
  ``errorMessage`` facet) when it closes, with row counts: bronze tracks read
  (``inputStatistics``), silver tracks written (``outputStatistics``).

Inputs are the bronze tables (``bronze_scraped_tracks``, ``bronze_api_enrichments``), outputs
silver and gold (``silver_enriched_tracks``, ``field_provenance``, ``gold_track_analytics``).
Gold is written by the gold task after the merge, so it carries no row count at run close.
Events are sent after the transaction that opened/closed the run commits (never for one that
rolls back); a failing receiver is logged, never raised into the pipeline.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
from typing import Any
from uuid import UUID

from sqlalchemy import event, text
from sqlalchemy.orm import Session

# openlineage-python is imported only once events are enabled: importing it costs ~0.25 s, which
# every CLI command and worker process (they all import pipeline.runs) would otherwise pay.

__all__ = [
    "INPUTS",
    "OUTPUTS",
    "enabled",
    "reset_client",
    "run_finished",
    "run_started",
    "waterfall_facet_class",
]

log = logging.getLogger("songnodes.lineage")

INPUTS = ("bronze_scraped_tracks", "bronze_api_enrichments")
OUTPUTS = ("silver_enriched_tracks", "field_provenance", "gold_track_analytics")
PRODUCER = "https://github.com/songnodes/songnodes"
_PENDING = "songnodes_openlineage_pending"
_client: Any = None


@functools.cache
def waterfall_facet_class() -> type:
    """The ``songnodes_waterfall`` run facet: the waterfall (``metadata_enrichment_config``) and
    provider registry snapshot a run used (built on first use, see the import note above)."""
    import attr
    from openlineage.client.facet_v2 import RunFacet

    @attr.define
    class WaterfallSnapshotRunFacet(RunFacet):
        waterfall: dict[str, Any] = attr.field(factory=dict)
        providers: dict[str, Any] = attr.field(factory=dict)

        @staticmethod
        def _get_schema() -> str:
            return (
                "https://github.com/songnodes/songnodes/blob/main/docs/operations.md#openlineage"
            )

    return WaterfallSnapshotRunFacet


def enabled() -> bool:
    if os.environ.get("OPENLINEAGE_DISABLED", "").strip().lower() == "true":
        return False
    return any(
        os.environ.get(k)
        for k in ("OPENLINEAGE_URL", "OPENLINEAGE_CONFIG", "OPENLINEAGE__TRANSPORT__TYPE")
    )


def _get_client() -> Any:
    global _client
    if _client is None:
        from openlineage.client import OpenLineageClient

        _client = OpenLineageClient()
    return _client


def reset_client() -> None:
    """Forget the cached client (the transport is read from the environment once)."""
    global _client
    _client = None


def _dataset_namespace(session: Session) -> tuple[str, str]:
    """OpenLineage naming for PostgreSQL: namespace ``postgres://host:port``, names
    ``database.schema.table`` (no credentials)."""
    url = session.get_bind().engine.url
    return f"postgres://{url.host or 'localhost'}:{url.port or 5432}", url.database or "postgres"


def _datasets(session: Session, counts: dict[str, int] | None) -> tuple[list[Any], list[Any]]:
    from openlineage.client.event_v2 import InputDataset, OutputDataset
    from openlineage.client.facet_v2 import (
        input_statistics_input_dataset,
        output_statistics_output_dataset,
    )

    namespace, database = _dataset_namespace(session)
    counts = counts or {}
    inputs = []
    for table in INPUTS:
        facets: dict[str, Any] = {}
        if table in counts:
            facets["inputStatistics"] = (
                input_statistics_input_dataset.InputStatisticsInputDatasetFacet(
                    rowCount=counts[table]
                )
            )
        inputs.append(InputDataset(namespace, f"{database}.public.{table}", inputFacets=facets))
    outputs = []
    for table in OUTPUTS:
        out_facets: dict[str, Any] = {}
        if table in counts:
            out_facets["outputStatistics"] = (
                output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                    rowCount=counts[table]
                )
            )
        outputs.append(
            OutputDataset(namespace, f"{database}.public.{table}", outputFacets=out_facets)
        )
    return inputs, outputs


def _run_row(session: Session, run_id: UUID | str) -> Any:
    return session.execute(
        text("""
            SELECT id, run_type, run_status, waterfall_config_snapshot, provider_config_snapshot,
                   records_processed, records_succeeded, records_failed, critical_errors
            FROM enrichment_pipeline_runs WHERE id = :r"""),
        {"r": str(run_id)},
    ).one()


def _event(session: Session, run_id: UUID | str, state: str) -> Any:
    from openlineage.client.event_v2 import Job, Run, RunEvent, RunState
    from openlineage.client.facet_v2 import error_message_run

    row = _run_row(session, run_id)
    facets: dict[str, Any] = {
        "songnodes_waterfall": waterfall_facet_class()(
            waterfall=dict(row.waterfall_config_snapshot or {}),
            providers=dict(row.provider_config_snapshot or {}),
        )
    }
    counts = None
    if state != "START":
        counts = {
            "bronze_scraped_tracks": int(row.records_processed or 0),
            "silver_enriched_tracks": int(row.records_succeeded or 0),
        }
    if state == "FAIL":
        facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message="; ".join(row.critical_errors or []) or f"{row.records_failed} records failed",
            programmingLanguage="python",
        )
    inputs, outputs = _datasets(session, counts)
    return RunEvent(
        eventType=RunState(state),
        eventTime=dt.datetime.now(dt.UTC).isoformat(),
        run=Run(runId=str(row.id), facets=facets),
        job=Job(
            namespace=os.environ.get("OPENLINEAGE_NAMESPACE", "songnodes"),
            name=f"songnodes.{row.run_type}",
        ),
        producer=PRODUCER,
        inputs=inputs,
        outputs=outputs,
    )


def _queue(session: Session, ev: Any) -> None:
    pending = session.info.setdefault(_PENDING, [])
    if not session.info.get(_PENDING + ":hooked"):
        session.info[_PENDING + ":hooked"] = True
        event.listen(session, "after_commit", _flush)
        event.listen(session, "after_rollback", _drop)
    pending.append(ev)


def _flush(session: Session) -> None:
    events = session.info.pop(_PENDING, [])
    for ev in events:
        try:
            _get_client().emit(ev)
        except Exception as exc:  # lineage is for the tools, never a reason to fail a run
            log.warning(
                "openlineage event not sent",
                extra={"run_id": ev.run.runId, "state": str(ev.eventType), "error": repr(exc)},
            )


def _drop(session: Session) -> None:
    session.info.pop(_PENDING, None)


def run_started(session: Session, run_id: UUID | str) -> None:
    """Queue START for ``run_id`` (sent when the session commits)."""
    if enabled():
        _queue(session, _event(session, run_id, "START"))


def run_finished(session: Session, run_id: UUID | str) -> None:
    """Queue COMPLETE or FAIL for a run just closed (sent when the session commits)."""
    if not enabled():
        return
    status = session.execute(
        text("SELECT run_status FROM enrichment_pipeline_runs WHERE id = :r"), {"r": str(run_id)}
    ).scalar_one()
    if status == "running":
        return
    _queue(session, _event(session, run_id, "FAIL" if status == "failed" else "COMPLETE"))
