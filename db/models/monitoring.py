"""Alert tables of migration 015: rules (thresholds in SQL), what fires now, the history."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import BigInteger, Boolean, Identity, Index, Integer, Numeric, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base, created_at_column

__all__ = ["AlertEvent", "AlertRule", "AlertState"]


class AlertRule(Base):
    """A condition's threshold (subject '*') or a per-subject override (a provider, a field)."""

    __tablename__ = "alert_rules"

    condition: Mapped[str] = mapped_column(Text, primary_key=True)
    subject: Mapped[str] = mapped_column(Text, primary_key=True, server_default=text("'*'"))
    threshold: Mapped[Decimal] = mapped_column(Numeric(14, 4))
    comparison: Mapped[str] = mapped_column(Text)
    window_s: Mapped[int] = mapped_column(Integer, server_default=text("86400"))
    min_samples: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    description: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = created_at_column()


class AlertState(Base):
    """One condition x subject that fires right now."""

    __tablename__ = "alert_state"

    condition: Mapped[str] = mapped_column(Text, primary_key=True)
    subject: Mapped[str] = mapped_column(Text, primary_key=True)
    value: Mapped[Decimal] = mapped_column(Numeric(20, 4))
    threshold: Mapped[Decimal] = mapped_column(Numeric(14, 4))
    firing_since: Mapped[dt.datetime] = created_at_column()
    last_evaluated_at: Mapped[dt.datetime] = created_at_column()


class AlertEvent(Base):
    """A firing or a resolution (append-only history)."""

    __tablename__ = "alert_events"
    __table_args__ = (Index("ix_alert_events_occurred_at", text("occurred_at DESC")),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    occurred_at: Mapped[dt.datetime] = created_at_column()
    condition: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    event: Mapped[str] = mapped_column(Text)
    value: Mapped[Decimal | None] = mapped_column(Numeric(20, 4))
    threshold: Mapped[Decimal] = mapped_column(Numeric(14, 4))
