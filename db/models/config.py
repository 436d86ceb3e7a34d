"""Waterfall configuration: provider registry, per-field priorities, performance history."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    Computed,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, INTERVAL, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base, TimestampTZ, created_at_column, uuid_pk

__all__ = ["EnrichmentProvider", "MetadataEnrichmentConfig", "ProviderPerformanceHistory"]

_PROVIDER_FK = "enrichment_providers.provider_name"


def _true() -> Mapped[bool]:
    return mapped_column(Boolean, nullable=False, server_default=text("true"))


class EnrichmentProvider(Base):
    """A provider the waterfall may call; ``health_status`` mirrors its circuit breaker."""

    __tablename__ = "enrichment_providers"
    __table_args__ = (
        Index(
            "ix_enrichment_providers_supported_fields", "supported_fields", postgresql_using="gin"
        ),
    )

    provider_name: Mapped[str] = mapped_column(Text, primary_key=True)
    provider_type: Mapped[str] = mapped_column(Text)
    base_url: Mapped[str | None] = mapped_column(Text)
    api_version: Mapped[str | None] = mapped_column(Text)
    supported_fields: Mapped[list[str]] = mapped_column(ARRAY(Text))
    rate_limit_per_second: Mapped[Decimal | None] = mapped_column(Numeric(8, 3))
    rate_limit_per_day: Mapped[int | None] = mapped_column(Integer)
    avg_confidence_score: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    avg_response_time_ms: Mapped[int | None] = mapped_column(Integer)
    success_rate: Mapped[Decimal | None] = mapped_column(Numeric(5, 4))
    enabled: Mapped[bool] = _true()
    health_status: Mapped[str] = mapped_column(Text, server_default=text("'healthy'"))
    last_health_check: Mapped[dt.datetime | None] = mapped_column(TimestampTZ)
    requires_auth: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    auth_type: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = created_at_column()
    updated_at: Mapped[dt.datetime] = created_at_column()
    # 006: price of one API call, summed into each run's total_api_cost_usd.
    cost_per_call_usd: Mapped[Decimal] = mapped_column(Numeric(10, 6), server_default=text("0"))


class MetadataEnrichmentConfig(Base):
    """Waterfall of one metadata field: up to four (provider, min confidence) slots."""

    __tablename__ = "metadata_enrichment_config"

    metadata_field: Mapped[str] = mapped_column(Text, primary_key=True)
    priority_1_provider: Mapped[str | None] = mapped_column(
        Text, ForeignKey(_PROVIDER_FK, onupdate="CASCADE")
    )
    priority_1_confidence: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    priority_2_provider: Mapped[str | None] = mapped_column(
        Text, ForeignKey(_PROVIDER_FK, onupdate="CASCADE")
    )
    priority_2_confidence: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    priority_3_provider: Mapped[str | None] = mapped_column(
        Text, ForeignKey(_PROVIDER_FK, onupdate="CASCADE")
    )
    priority_3_confidence: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    priority_4_provider: Mapped[str | None] = mapped_column(
        Text, ForeignKey(_PROVIDER_FK, onupdate="CASCADE")
    )
    priority_4_confidence: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    enabled: Mapped[bool] = _true()
    retry_on_low_confidence: Mapped[bool] = _true()
    min_acceptable_confidence: Mapped[Decimal] = mapped_column(
        Numeric(3, 2), server_default=text("0.50")
    )
    field_type: Mapped[str] = mapped_column(Text)
    field_description: Mapped[str | None] = mapped_column(Text)
    required_for_gold: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    validation_rules: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    last_updated: Mapped[dt.datetime] = created_at_column()
    updated_by: Mapped[str | None] = mapped_column(Text)
    # 006: 'sequential' (fewest paid calls) or 'parallel' (lowest latency).
    waterfall_mode: Mapped[str] = mapped_column(Text, server_default=text("'sequential'"))
    # 017: how long an answer for this field stays fresh (NULL: for ever).
    fresh_for: Mapped[dt.timedelta | None] = mapped_column(INTERVAL)


class ProviderPerformanceHistory(Base):
    """Per provider, field and period: requests, successes, generated success rate."""

    __tablename__ = "provider_performance_history"
    __table_args__ = (
        UniqueConstraint(
            "provider_name",
            "metadata_field",
            "period_start",
            "period_end",
            name="uq_provider_performance_history_period",
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    provider_name: Mapped[str] = mapped_column(
        Text, ForeignKey(_PROVIDER_FK, ondelete="CASCADE", onupdate="CASCADE")
    )
    metadata_field: Mapped[str] = mapped_column(
        Text, ForeignKey("metadata_enrichment_config.metadata_field", ondelete="CASCADE")
    )
    request_count: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    success_count: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    success_rate: Mapped[Decimal | None] = mapped_column(
        Numeric(5, 4),
        Computed(
            "CASE WHEN request_count > 0 THEN success_count::numeric / request_count ELSE 0 END",
            persisted=True,
        ),
    )
    avg_confidence: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    avg_response_time_ms: Mapped[int | None] = mapped_column(Integer)
    # 016: what waterfall suggestions need (agreement with the merged value, wins, cost).
    compared_count: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    agreement_count: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    chosen_count: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    total_cost_usd: Mapped[Decimal] = mapped_column(Numeric(12, 6), server_default=text("0"))
    period_start: Mapped[dt.datetime] = mapped_column(TimestampTZ)
    period_end: Mapped[dt.datetime] = mapped_column(TimestampTZ)
    created_at: Mapped[dt.datetime] = created_at_column()
