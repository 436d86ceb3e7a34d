"""Operational tables of migration 006: quarantine, the enrichment join, track artists."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base, TimestampTZ, created_at_column, uuid_pk

__all__ = [
    "EnrichmentFlight",
    "EnrichmentJob",
    "EnrichmentLookup",
    "IngestQuarantine",
    "PlaylistEntryFlag",
    "SilverFieldCheck",
    "SilverTrackArtist",
]


class IngestQuarantine(Base):
    """An envelope that failed validation: the reason and the original bytes, never dropped."""

    __tablename__ = "ingest_quarantine"
    __table_args__ = (Index("ix_ingest_quarantine_received_at", text("received_at DESC")),)

    id: Mapped[uuid.UUID] = uuid_pk()
    kind: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    error_detail: Mapped[list[Any]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    raw_bytes: Mapped[bytes] = mapped_column(LargeBinary)
    byte_length: Mapped[int] = mapped_column(Integer)
    content_sha256: Mapped[str] = mapped_column(Text, unique=True)
    received_via: Mapped[str] = mapped_column(Text)
    received_at: Mapped[dt.datetime] = created_at_column()
    # 'message', or 'batch' for a whole batch that could not be read as one (not a list).
    scope: Mapped[str] = mapped_column(Text, server_default=text("'message'"))



class PlaylistEntryFlag(Base):
    """012: a setlist entry kept in bronze as sent but not readable as sent (or, with no
    ``entry_index``, a setlist with no identified entry), and why."""

    __tablename__ = "playlist_entry_flags"
    __table_args__ = (
        UniqueConstraint(
            "bronze_playlist_id",
            "entry_index",
            "reason",
            name="uq_playlist_entry_flags_entry",
            postgresql_nulls_not_distinct=True,
        ),
        Index("ix_playlist_entry_flags_flagged_at", text("flagged_at DESC")),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    bronze_playlist_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("bronze_scraped_playlists.id")
    )
    entry_index: Mapped[int | None] = mapped_column(Integer)
    bronze_track_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("bronze_scraped_tracks.id")
    )
    position: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    flagged_at: Mapped[dt.datetime] = created_at_column()

class EnrichmentJob(Base):
    """One bronze track in one run: the unit the lookups fan out from and merge fans into."""

    __tablename__ = "enrichment_jobs"
    __table_args__ = (
        UniqueConstraint("run_id", "bronze_track_id", name="uq_enrichment_jobs_run_bronze"),
        Index(
            "ix_enrichment_jobs_open",
            "status",
            "updated_at",
            postgresql_where=text("status IN ('enriching', 'merging')"),
        ),
        Index("ix_enrichment_jobs_bronze_track_id", "bronze_track_id"),
        Index(
            "ix_enrichment_jobs_run_open",
            "run_id",
            postgresql_where=text("status IN ('enriching', 'merging')"),
        ),
        Index(
            "ix_enrichment_jobs_waits_for",
            "waits_for",
            postgresql_where=text("waits_for IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    run_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("enrichment_pipeline_runs.id", ondelete="CASCADE")
    )
    bronze_track_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("bronze_scraped_tracks.id")
    )
    status: Mapped[str] = mapped_column(Text, server_default=text("'enriching'"))
    round: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    fields: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    replay_mode: Mapped[str | None] = mapped_column(Text)
    silver_track_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("silver_enriched_tracks.id", ondelete="SET NULL")
    )
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = created_at_column()
    updated_at: Mapped[dt.datetime] = created_at_column()
    merged_at: Mapped[dt.datetime | None] = mapped_column(TimestampTZ)
    # 017: fields reused from ``reuse_silver_id`` instead of looked up; the leader job this
    # sighting of a new track waits for (single flight).
    reused_fields: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    reuse_silver_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("silver_enriched_tracks.id", ondelete="SET NULL")
    )
    waits_for: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("enrichment_jobs.id", ondelete="SET NULL")
    )


class EnrichmentLookup(Base):
    """One provider asked about one job, for every plan field it serves."""

    __tablename__ = "enrichment_lookups"
    __table_args__ = (
        Index(
            "ix_enrichment_lookups_pending",
            "provider",
            "updated_at",
            postgresql_where=text("status = 'pending'"),
        ),
    )

    job_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True),
        ForeignKey("enrichment_jobs.id", ondelete="CASCADE"),
        primary_key=True,
    )
    provider: Mapped[str] = mapped_column(Text, primary_key=True)
    round: Mapped[int] = mapped_column(Integer)
    fields: Mapped[list[str]] = mapped_column(ARRAY(Text))
    status: Mapped[str] = mapped_column(Text, server_default=text("'pending'"))
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    api_calls: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    cost_usd: Mapped[Decimal] = mapped_column(Numeric(10, 6), server_default=text("0"))
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = created_at_column()
    updated_at: Mapped[dt.datetime] = created_at_column()
    # 014: while a worker asks the provider (a re-sent duplicate message skips a leased lookup).
    leased_until: Mapped[dt.datetime | None] = mapped_column(TimestampTZ)
    leased_by: Mapped[str | None] = mapped_column(Text)


class SilverTrackArtist(Base):
    """Which silver artists perform a silver track, in credit order."""

    __tablename__ = "silver_track_artists"
    __table_args__ = (Index("ix_silver_track_artists_artist_id", "artist_id"),)

    track_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True),
        ForeignKey("silver_enriched_tracks.id", ondelete="CASCADE"),
        primary_key=True,
    )
    artist_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True),
        ForeignKey("silver_enriched_artists.id", ondelete="CASCADE"),
        primary_key=True,
    )
    position: Mapped[int] = mapped_column(Integer, server_default=text("0"))


class SilverFieldCheck(Base):
    """017: when the providers were last asked for a silver track's field, in which run and
    under which configuration of that field (``field_config_hash``)."""

    __tablename__ = "silver_field_checks"
    __table_args__ = (Index("ix_silver_field_checks_checked_at", "checked_at"),)

    silver_track_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True),
        ForeignKey("silver_enriched_tracks.id", ondelete="CASCADE"),
        primary_key=True,
    )
    metadata_field: Mapped[str] = mapped_column(Text, primary_key=True)
    checked_run_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("enrichment_pipeline_runs.id", ondelete="SET NULL")
    )
    checked_at: Mapped[dt.datetime] = created_at_column()
    config_hash: Mapped[str] = mapped_column(Text)


class EnrichmentFlight(Base):
    """017: the one job making the lookups for a new track's identity key (single flight)."""

    __tablename__ = "enrichment_flights"
    __table_args__ = (Index("ix_enrichment_flights_leader_job_id", "leader_job_id"),)

    identity_key: Mapped[str] = mapped_column(Text, primary_key=True)
    leader_job_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("enrichment_jobs.id", ondelete="CASCADE")
    )
    created_at: Mapped[dt.datetime] = created_at_column()
