"""Lineage and replay: runs, field-level transformations, provenance, replay queue, metrics."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    Computed,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base, TimestampTZ, created_at_column, uuid_pk

__all__ = [
    "DataQualityMetric",
    "EnrichmentPipelineRun",
    "EnrichmentTransformation",
    "FieldProvenance",
    "PipelineReplayQueue",
]

_RUNS = "enrichment_pipeline_runs.id"


def _int0() -> Mapped[int]:
    return mapped_column(Integer, nullable=False, server_default=text("0"))


class EnrichmentPipelineRun(Base):
    """One pipeline execution with the waterfall/provider configuration it ran with."""

    __tablename__ = "enrichment_pipeline_runs"
    __table_args__ = (
        Index("ix_enrichment_pipeline_runs_status_started", "run_status", text("started_at DESC")),
        Index("ix_enrichment_pipeline_runs_started_at", text("started_at DESC")),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    run_type: Mapped[str] = mapped_column(Text)
    run_status: Mapped[str] = mapped_column(Text, server_default=text("'running'"))
    source_filter: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    date_range_start: Mapped[dt.datetime | None] = mapped_column(TimestampTZ)
    date_range_end: Mapped[dt.datetime | None] = mapped_column(TimestampTZ)
    waterfall_config_snapshot: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    provider_config_snapshot: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    records_processed: Mapped[int] = _int0()
    records_succeeded: Mapped[int] = _int0()
    records_failed: Mapped[int] = _int0()
    records_skipped: Mapped[int] = _int0()
    error_summary: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    critical_errors: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    total_api_calls: Mapped[int] = _int0()
    total_api_cost_usd: Mapped[Decimal | None] = mapped_column(Numeric(10, 4))
    avg_processing_time_ms: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[dt.datetime] = created_at_column()
    completed_at: Mapped[dt.datetime | None] = mapped_column(TimestampTZ)
    duration_seconds: Mapped[Decimal | None] = mapped_column(
        Numeric, Computed("EXTRACT(epoch FROM (completed_at - started_at))", persisted=True)
    )
    triggered_by: Mapped[str | None] = mapped_column(Text)
    execution_environment: Mapped[str | None] = mapped_column(Text)


class EnrichmentTransformation(Base):
    """One field-level step (lookup, validation, merge...) of a run."""

    __tablename__ = "enrichment_transformations"
    __table_args__ = (
        Index("ix_enrichment_transformations_run_id", "run_id"),
        # 009: one composite index for the (bronze_id, run_id) probes (replaces bronze_id alone).
        Index(
            "ix_enrichment_transformations_bronze_run",
            "bronze_id",
            "run_id",
            postgresql_where=text("bronze_id IS NOT NULL"),
        ),
        Index(
            "ix_enrichment_transformations_silver_id",
            "silver_id",
            postgresql_where=text("silver_id IS NOT NULL"),
        ),
        Index("ix_enrichment_transformations_field_provider", "metadata_field", "provider_used"),
        Index("ix_enrichment_transformations_created_at", text("created_at DESC")),
        # 010: the previous merge of a (silver track, field), for replay summaries and trace.
        Index(
            "ix_enrichment_transformations_merge_history",
            "silver_id",
            "metadata_field",
            text("created_at DESC"),
            postgresql_where=text("transformation_type = 'merge'"),
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    run_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey(_RUNS, ondelete="CASCADE")
    )
    bronze_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("bronze_scraped_tracks.id", ondelete="SET NULL")
    )
    silver_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("silver_enriched_tracks.id", ondelete="SET NULL")
    )
    transformation_type: Mapped[str] = mapped_column(Text)
    metadata_field: Mapped[str | None] = mapped_column(Text)
    provider_used: Mapped[str | None] = mapped_column(Text)
    provider_confidence: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    input_value: Mapped[Any | None] = mapped_column(JSONB)
    output_value: Mapped[Any | None] = mapped_column(JSONB)
    transformation_rules: Mapped[Any | None] = mapped_column(JSONB)
    success: Mapped[bool] = mapped_column(Boolean)
    error_message: Mapped[str | None] = mapped_column(Text)
    retry_count: Mapped[int] = _int0()
    processing_time_ms: Mapped[int | None] = mapped_column(Integer)
    api_endpoint_called: Mapped[str | None] = mapped_column(Text)
    api_response_code: Mapped[int | None] = mapped_column(Integer)
    api_cost_usd: Mapped[Decimal | None] = mapped_column(Numeric(10, 6))
    created_at: Mapped[dt.datetime] = created_at_column()


class FieldProvenance(Base):
    """Why a silver field has its current value: the winning transformation and its chain."""

    __tablename__ = "field_provenance"
    __table_args__ = (
        UniqueConstraint(
            "silver_track_id",
            "metadata_field",
            name="uq_field_provenance_silver_track_id_metadata_field",
        ),
        Index(
            "ix_field_provenance_transformation_chain",
            "transformation_chain",
            postgresql_using="gin",
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    silver_track_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("silver_enriched_tracks.id", ondelete="CASCADE")
    )
    metadata_field: Mapped[str] = mapped_column(Text)
    original_bronze_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("bronze_scraped_tracks.id", ondelete="SET NULL")
    )
    original_source: Mapped[str | None] = mapped_column(Text)
    original_value: Mapped[Any | None] = mapped_column(JSONB)
    transformation_chain: Mapped[list[uuid.UUID]] = mapped_column(
        ARRAY(UUID(as_uuid=True)), server_default=text("'{}'")
    )
    final_transformation_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("enrichment_transformations.id", ondelete="SET NULL")
    )
    current_value: Mapped[Any | None] = mapped_column(JSONB)
    current_confidence: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    current_provider: Mapped[str | None] = mapped_column(Text)
    total_transformations: Mapped[int] = _int0()
    last_modified_run_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey(_RUNS, ondelete="SET NULL")
    )
    created_at: Mapped[dt.datetime] = created_at_column()
    updated_at: Mapped[dt.datetime] = created_at_column()


class PipelineReplayQueue(Base):
    """A request to replay records; ``bronze_ids`` is TEXT[] checked as UUIDs (see 005)."""

    __tablename__ = "pipeline_replay_queue"
    __table_args__ = (
        Index(
            "ix_pipeline_replay_queue_queued",
            text("priority DESC"),
            "created_at",
            postgresql_where=text("status = 'queued'"),
        ),
        Index(
            "ix_pipeline_replay_queue_processing",
            "started_at",
            postgresql_where=text("status = 'processing'"),
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    bronze_ids: Mapped[list[str]] = mapped_column(ARRAY(Text))
    target_layer: Mapped[str] = mapped_column(Text, server_default=text("'silver'"))
    replay_from_bronze: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    fields_to_replay: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    force_re_enrichment: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    use_historical_config: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    config_snapshot_run_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey(_RUNS)
    )
    status: Mapped[str] = mapped_column(Text, server_default=text("'queued'"))
    assigned_run_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey(_RUNS))
    requested_by: Mapped[str] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    priority: Mapped[int] = mapped_column(Integer, server_default=text("5"))
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = created_at_column()
    started_at: Mapped[dt.datetime | None] = mapped_column(TimestampTZ)
    completed_at: Mapped[dt.datetime | None] = mapped_column(TimestampTZ)


class DataQualityMetric(Base):
    """Quality snapshot per day (``metric_hour`` NULL) or hour, per layer; one row each."""

    __tablename__ = "data_quality_metrics"
    __table_args__ = (
        UniqueConstraint(
            "metric_date",
            "metric_hour",
            "data_layer",
            name="uq_data_quality_metrics_period",
            postgresql_nulls_not_distinct=True,
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    metric_date: Mapped[dt.date] = mapped_column(Date)
    metric_hour: Mapped[int | None] = mapped_column(Integer)
    data_layer: Mapped[str] = mapped_column(Text)
    total_records: Mapped[int] = _int0()
    valid_records: Mapped[int] = _int0()
    warning_records: Mapped[int] = _int0()
    failed_records: Mapped[int] = _int0()
    avg_field_completeness: Mapped[Decimal | None] = mapped_column(Numeric(5, 2))
    avg_quality_score: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    avg_enrichment_confidence: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    field_completeness: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    provider_success_rates: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[dt.datetime] = created_at_column()
