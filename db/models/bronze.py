"""Bronze: raw payloads as received; append-only (triggers reject UPDATE, DELETE, TRUNCATE)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    Computed,
    Date,
    ForeignKey,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base, TimestampTZ, created_at_column, uuid_pk

__all__ = [
    "BronzeApiEnrichment",
    "BronzeScrapedArtist",
    "BronzeScrapedPlaylist",
    "BronzeScrapedTrack",
]

# A redelivered identical payload hashes the same; a changed re-scrape is a new row.
_CONTENT_HASH = Computed("md5((raw_json)::text)", persisted=True)


class BronzeScrapedPlaylist(Base):
    """A raw playlist / DJ set as scraped."""

    __tablename__ = "bronze_scraped_playlists"
    __table_args__ = (
        UniqueConstraint(
            "source",
            "source_url",
            "source_playlist_id",
            "content_hash",
            "fields_hash",
            name="uq_bronze_scraped_playlists_identity",
            postgresql_nulls_not_distinct=True,
        ),
        Index("ix_bronze_scraped_playlists_source", "source"),
        Index("ix_bronze_scraped_playlists_scraped_at", text("scraped_at DESC")),
        Index("ix_bronze_scraped_playlists_raw_json", "raw_json", postgresql_using="gin"),
        # 014: the sweeper finds setlists by arrival.
        Index("ix_bronze_scraped_playlists_created_at", "created_at", postgresql_using="brin"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    source: Mapped[str] = mapped_column(Text)
    source_url: Mapped[str] = mapped_column(Text)
    source_playlist_id: Mapped[str | None] = mapped_column(Text)
    scraper_version: Mapped[str] = mapped_column(Text)
    raw_json: Mapped[dict[str, Any]] = mapped_column(JSONB)
    content_hash: Mapped[str | None] = mapped_column(Text, _CONTENT_HASH)
    # sha256 of every other stored field as received (db.bronze.fields_hash); NULL before 011.
    fields_hash: Mapped[str | None] = mapped_column(Text)
    playlist_name: Mapped[str | None] = mapped_column(Text)
    artist_name: Mapped[str | None] = mapped_column(Text)
    event_name: Mapped[str | None] = mapped_column(Text)
    event_date: Mapped[dt.date | None] = mapped_column(Date)
    scraped_at: Mapped[dt.datetime] = created_at_column()
    created_at: Mapped[dt.datetime] = created_at_column()


class BronzeScrapedTrack(Base):
    """A raw track as scraped (optionally at a position of a bronze playlist)."""

    __tablename__ = "bronze_scraped_tracks"
    __table_args__ = (
        UniqueConstraint(
            "source",
            "source_url",
            "source_track_id",
            "playlist_id",
            "position",
            "content_hash",
            "fields_hash",
            name="uq_bronze_scraped_tracks_identity",
            postgresql_nulls_not_distinct=True,
        ),
        Index("ix_bronze_scraped_tracks_source", "source"),
        Index("ix_bronze_scraped_tracks_scraped_at", text("scraped_at DESC")),
        Index(
            "ix_bronze_scraped_tracks_playlist_id",
            "playlist_id",
            postgresql_where=text("playlist_id IS NOT NULL"),
        ),
        Index(
            "ix_bronze_scraped_tracks_raw_json",
            "raw_json",
            postgresql_using="gin",
            postgresql_ops={"raw_json": "jsonb_path_ops"},
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    source: Mapped[str] = mapped_column(Text)
    source_url: Mapped[str] = mapped_column(Text)
    source_track_id: Mapped[str | None] = mapped_column(Text)
    scraper_version: Mapped[str] = mapped_column(Text)
    raw_json: Mapped[dict[str, Any]] = mapped_column(JSONB)
    content_hash: Mapped[str | None] = mapped_column(Text, _CONTENT_HASH)
    # sha256 of every other stored field as received (db.bronze.fields_hash); NULL before 011.
    fields_hash: Mapped[str | None] = mapped_column(Text)
    artist_name: Mapped[str | None] = mapped_column(Text)
    track_title: Mapped[str | None] = mapped_column(Text)
    playlist_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("bronze_scraped_playlists.id")
    )
    position: Mapped[int | None] = mapped_column(Integer)
    scraped_at: Mapped[dt.datetime] = created_at_column()
    created_at: Mapped[dt.datetime] = created_at_column()


class BronzeScrapedArtist(Base):
    """A raw artist profile as scraped."""

    __tablename__ = "bronze_scraped_artists"
    __table_args__ = (
        UniqueConstraint(
            "source",
            "source_url",
            "source_artist_id",
            "content_hash",
            "fields_hash",
            name="uq_bronze_scraped_artists_identity",
            postgresql_nulls_not_distinct=True,
        ),
        Index("ix_bronze_scraped_artists_source", "source"),
        Index("ix_bronze_scraped_artists_artist_name", "artist_name"),
        Index("ix_bronze_scraped_artists_raw_json", "raw_json", postgresql_using="gin"),
        Index("ix_bronze_scraped_artists_created_at", "created_at", postgresql_using="brin"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    source: Mapped[str] = mapped_column(Text)
    source_url: Mapped[str | None] = mapped_column(Text)
    source_artist_id: Mapped[str | None] = mapped_column(Text)
    scraper_version: Mapped[str] = mapped_column(Text)
    raw_json: Mapped[dict[str, Any]] = mapped_column(JSONB)
    content_hash: Mapped[str | None] = mapped_column(Text, _CONTENT_HASH)
    # sha256 of every other stored field as received (db.bronze.fields_hash); NULL before 011.
    fields_hash: Mapped[str | None] = mapped_column(Text)
    artist_name: Mapped[str] = mapped_column(Text)
    aliases: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    scraped_at: Mapped[dt.datetime] = created_at_column()
    created_at: Mapped[dt.datetime] = created_at_column()


class BronzeApiEnrichment(Base):
    """One raw provider response (credentials redacted), stored before anything is merged."""

    __tablename__ = "bronze_api_enrichments"
    __table_args__ = (
        Index("ix_bronze_api_enrichments_api_provider", "api_provider"),
        Index(
            "ix_bronze_api_enrichments_bronze_track_id",
            "bronze_track_id",
            postgresql_where=text("bronze_track_id IS NOT NULL"),
        ),
        Index("ix_bronze_api_enrichments_fetched_at", text("fetched_at DESC")),
        Index(
            "ix_bronze_api_enrichments_track_provider",
            "bronze_track_id",
            "api_provider",
            "fetched_at",
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    bronze_track_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("bronze_scraped_tracks.id", ondelete="CASCADE")
    )
    api_provider: Mapped[str] = mapped_column(Text)
    api_endpoint: Mapped[str] = mapped_column(Text)
    api_version: Mapped[str | None] = mapped_column(Text)
    request_params: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    raw_response: Mapped[dict[str, Any]] = mapped_column(JSONB)
    response_status: Mapped[int] = mapped_column(Integer)
    # 006: the run that fetched it, so a replay can re-merge exactly that run's responses.
    run_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    fetched_at: Mapped[dt.datetime] = mapped_column(
        TimestampTZ, nullable=False, server_default=text("now()")
    )
    created_at: Mapped[dt.datetime] = created_at_column()
