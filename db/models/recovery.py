"""Tables of migrations 014, 018 and 021 (issue 20): failed work kept for re-runs, maintenance
marks, the lookup answer journal and the request reply journal."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import Boolean, ForeignKeyConstraint, Index, Integer, Text, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base, created_at_column, uuid_pk

__all__ = ["EnrichmentLookupAnswer", "EnrichmentRequestReply", "FailedWork", "MaintenanceMark"]


class FailedWork(Base):
    """The input of a task that finally failed: the sweeper re-runs transient ones."""

    __tablename__ = "failed_work"
    __table_args__ = (
        Index("ix_failed_work_open", "created_at", postgresql_where=text("status = 'failed'")),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    task_name: Mapped[str] = mapped_column(Text)
    task_id: Mapped[str | None] = mapped_column(Text)
    args: Mapped[list[Any]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    kwargs: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    error: Mapped[str] = mapped_column(Text)
    transient: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    status: Mapped[str] = mapped_column(Text, server_default=text("'failed'"))
    reruns: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    created_at: Mapped[dt.datetime] = created_at_column()
    updated_at: Mapped[dt.datetime] = created_at_column()


class MaintenanceMark(Base):
    """When something last happened (``gold_views_refreshed``, ``sweep``)."""

    __tablename__ = "maintenance_marks"

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    at: Mapped[dt.datetime] = created_at_column()


class EnrichmentLookupAnswer(Base):
    """018: a provider's answer to a lookup, journaled as it arrived and not yet recorded
    (``pipeline.lookups.journal``): a later delivery of the lookup records it instead of asking
    again; recording deletes it."""

    __tablename__ = "enrichment_lookup_answers"
    __table_args__ = (
        ForeignKeyConstraint(
            ["job_id", "provider"],
            ["enrichment_lookups.job_id", "enrichment_lookups.provider"],
            ondelete="CASCADE",
        ),
    )

    job_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    provider: Mapped[str] = mapped_column(Text, primary_key=True)
    answer: Mapped[dict[str, Any]] = mapped_column(JSONB)
    holder: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = created_at_column()


class EnrichmentRequestReply(Base):
    """021: a provider's reply to one request of a lookup not yet recorded
    (``pipeline.lookups.replies``): a later delivery of the lookup is answered from it before the
    network; recording deletes it."""

    __tablename__ = "enrichment_request_replies"
    __table_args__ = (
        ForeignKeyConstraint(
            ["job_id", "provider"],
            ["enrichment_lookups.job_id", "enrichment_lookups.provider"],
            ondelete="CASCADE",
        ),
    )

    job_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    provider: Mapped[str] = mapped_column(Text, primary_key=True)
    request_key: Mapped[str] = mapped_column(Text, primary_key=True)
    status_code: Mapped[int] = mapped_column(Integer)
    body: Mapped[Any] = mapped_column(JSONB)
    is_json: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_at: Mapped[dt.datetime] = created_at_column()
