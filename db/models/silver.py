"""Silver: one validated, enriched row per real-world track / artist / playlist."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
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
    "SilverEnrichedArtist",
    "SilverEnrichedPlaylist",
    "SilverEnrichedTrack",
    "SilverPlaylistTrack",
    "SilverTrackAlias",
    "SilverTrackSighting",
]

_ID_COLUMNS = ("isrc", "spotify_id", "beatport_id", "musicbrainz_id", "deezer_id", "tidal_id")


def _partial_unique(table: str, column: str) -> Index:
    return Index(
        f"uq_{table}_{column}", column, unique=True, postgresql_where=text(f"{column} IS NOT NULL")
    )


def _updated_at() -> Mapped[dt.datetime]:
    return mapped_column(TimestampTZ, nullable=False, server_default=text("now()"))


class SilverEnrichedTrack(Base):
    """A deduplicated track. ``key`` is Camelot (a trigger normalises other spellings)."""

    __tablename__ = "silver_enriched_tracks"
    __table_args__ = (
        UniqueConstraint("identity_key", name="uq_silver_enriched_tracks_identity_key"),
        *(_partial_unique("silver_enriched_tracks", c) for c in (*_ID_COLUMNS, "discogs_id")),
        CheckConstraint("bpm IS NULL OR bpm BETWEEN 20 AND 300", name="bpm_range"),
        CheckConstraint("key IS NULL OR key ~ '^(1[0-2]|[1-9])[AB]$'", name="key_camelot"),
        CheckConstraint(
            "isrc IS NULL OR isrc ~ '^[A-Z]{2}[A-Z0-9]{3}[0-9]{7}$'", name="isrc_format"
        ),
        CheckConstraint(
            "validation_status IN ('valid', 'warning', 'needs_review', 'failed')",
            name="validation_status",
        ),
        Index("ix_silver_enriched_tracks_bronze_id", "bronze_id"),
        Index("ix_silver_enriched_tracks_validation_status", "validation_status"),
        Index("ix_silver_enriched_tracks_updated_at", text("updated_at DESC")),
        Index("ix_silver_enriched_tracks_genre", "genre", postgresql_using="gin"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    bronze_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("bronze_scraped_tracks.id")
    )
    artist_name: Mapped[str] = mapped_column(Text)
    track_title: Mapped[str] = mapped_column(Text)
    # Normalised "artist|title" (pipeline.matching.identity_key); a trigger fills a default.
    identity_key: Mapped[str] = mapped_column(Text)
    spotify_id: Mapped[str | None] = mapped_column(Text)
    isrc: Mapped[str | None] = mapped_column(Text)
    beatport_id: Mapped[str | None] = mapped_column(Text)
    musicbrainz_id: Mapped[str | None] = mapped_column(Text)
    deezer_id: Mapped[str | None] = mapped_column(Text)
    tidal_id: Mapped[str | None] = mapped_column(Text)
    discogs_id: Mapped[str | None] = mapped_column(Text)
    release_date: Mapped[dt.date | None] = mapped_column(Date)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    bpm: Mapped[Decimal | None] = mapped_column(Numeric(6, 2))
    key: Mapped[str | None] = mapped_column(Text)
    genre: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    energy: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    valence: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    danceability: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    validation_status: Mapped[str] = mapped_column(Text, server_default=text("'needs_review'"))
    data_quality_score: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    validation_errors: Mapped[Any | None] = mapped_column(JSONB)
    validation_warnings: Mapped[Any | None] = mapped_column(JSONB)
    enrichment_metadata: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'"))
    enrichment_run_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    field_confidence: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'"))
    created_at: Mapped[dt.datetime] = created_at_column()
    updated_at: Mapped[dt.datetime] = _updated_at()
    validated_at: Mapped[dt.datetime | None] = mapped_column(TimestampTZ)
    enriched_at: Mapped[dt.datetime | None] = mapped_column(TimestampTZ)


class SilverEnrichedArtist(Base):
    """A deduplicated artist with its canonical name."""

    __tablename__ = "silver_enriched_artists"
    __table_args__ = (
        UniqueConstraint("canonical_name", name="uq_silver_enriched_artists_canonical_name"),
        _partial_unique("silver_enriched_artists", "spotify_id"),
        _partial_unique("silver_enriched_artists", "musicbrainz_id"),
        Index("ix_silver_enriched_artists_normalized_name", "normalized_name"),
        # 008: merges find an artist by alias (aliases @> ARRAY[name]) for every credited name.
        Index("ix_silver_enriched_artists_aliases", "aliases", postgresql_using="gin"),
        # 014: the sweeper checks that every bronze artist reached silver.
        Index("ix_silver_enriched_artists_bronze_ids", "bronze_ids", postgresql_using="gin"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    bronze_ids: Mapped[list[uuid.UUID]] = mapped_column(
        ARRAY(UUID(as_uuid=True)), server_default=text("'{}'")
    )
    canonical_name: Mapped[str] = mapped_column(Text)
    aliases: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    normalized_name: Mapped[str] = mapped_column(Text)
    spotify_id: Mapped[str | None] = mapped_column(Text)
    musicbrainz_id: Mapped[str | None] = mapped_column(Text)
    discogs_id: Mapped[str | None] = mapped_column(Text)
    beatport_id: Mapped[str | None] = mapped_column(Text)
    genres: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    country: Mapped[str | None] = mapped_column(Text)
    bio: Mapped[str | None] = mapped_column(Text)
    image_url: Mapped[str | None] = mapped_column(Text)
    validation_status: Mapped[str] = mapped_column(Text, server_default=text("'needs_review'"))
    data_quality_score: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    enrichment_metadata: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'"))
    deduplication_strategy: Mapped[str | None] = mapped_column(Text)
    merged_artist_ids: Mapped[list[uuid.UUID] | None] = mapped_column(ARRAY(UUID(as_uuid=True)))
    created_at: Mapped[dt.datetime] = created_at_column()
    updated_at: Mapped[dt.datetime] = _updated_at()
    validated_at: Mapped[dt.datetime | None] = mapped_column(TimestampTZ)
    enriched_at: Mapped[dt.datetime | None] = mapped_column(TimestampTZ)


class SilverEnrichedPlaylist(Base):
    """A validated playlist / DJ set."""

    __tablename__ = "silver_enriched_playlists"
    __table_args__ = (
        Index("ix_silver_enriched_playlists_bronze_id", "bronze_id"),
        # 006: one silver playlist per bronze setlist.
        Index(
            "uq_silver_enriched_playlists_bronze_id",
            "bronze_id",
            unique=True,
            postgresql_where=text("bronze_id IS NOT NULL"),
        ),
        Index(
            "ix_silver_enriched_playlists_event_date",
            "event_date",
            postgresql_where=text("event_date IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    bronze_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("bronze_scraped_playlists.id")
    )
    playlist_name: Mapped[str] = mapped_column(Text)
    artist_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("silver_enriched_artists.id", ondelete="SET NULL")
    )
    artist_name: Mapped[str] = mapped_column(Text)
    event_name: Mapped[str | None] = mapped_column(Text)
    event_date: Mapped[dt.date | None] = mapped_column(Date)
    event_location: Mapped[str | None] = mapped_column(Text)
    event_venue: Mapped[str | None] = mapped_column(Text)
    track_count: Mapped[int | None] = mapped_column(Integer)
    total_duration_ms: Mapped[int | None] = mapped_column(BigInteger)
    validation_status: Mapped[str] = mapped_column(Text, server_default=text("'needs_review'"))
    data_quality_score: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    enrichment_metadata: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'"))
    created_at: Mapped[dt.datetime] = created_at_column()
    updated_at: Mapped[dt.datetime] = _updated_at()
    validated_at: Mapped[dt.datetime | None] = mapped_column(TimestampTZ)
    enriched_at: Mapped[dt.datetime | None] = mapped_column(TimestampTZ)


class SilverPlaylistTrack(Base):
    """One entry of a playlist in the order sent (012): an identified track, or an unidentified
    or unresolved position (no track), a ``w/`` slot or repeated position (``slot_role`` with),
    a mashup with its parts; a track played twice has two rows."""

    __tablename__ = "silver_playlist_tracks"
    __table_args__ = (
        Index("ix_silver_playlist_tracks_track_id", "track_id"),
        CheckConstraint("sequence >= 1", name="sequence_positive"),
        CheckConstraint(
            "entry_status IN ('identified', 'unidentified', 'unresolved')", name="entry_status"
        ),
        CheckConstraint(
            "(entry_status = 'identified') = (track_id IS NOT NULL)", name="identified_track"
        ),
        CheckConstraint("slot_role IN ('main', 'with')", name="slot_role"),
    )

    playlist_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True),
        ForeignKey("silver_enriched_playlists.id", ondelete="CASCADE"),
        primary_key=True,
    )
    sequence: Mapped[int] = mapped_column(Integer, primary_key=True)
    track_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("silver_enriched_tracks.id", ondelete="CASCADE")
    )
    position: Mapped[int] = mapped_column(Integer)
    cue_time_ms: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = created_at_column()
    bronze_track_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("bronze_scraped_tracks.id")
    )
    entry_status: Mapped[str] = mapped_column(Text, server_default=text("'identified'"))
    slot_role: Mapped[str] = mapped_column(Text, server_default=text("'main'"))
    mashup: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    mashup_parts: Mapped[Any | None] = mapped_column(JSONB)
    cue_time_raw: Mapped[str | None] = mapped_column(Text)


class SilverTrackAlias(Base):
    """020: an identity key a track was sighted under besides its own (issue 17)."""

    __tablename__ = "silver_track_aliases"
    __table_args__ = (Index("ix_silver_track_aliases_track_id", "track_id"),)

    identity_key: Mapped[str] = mapped_column(Text, primary_key=True)
    track_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("silver_enriched_tracks.id", ondelete="CASCADE")
    )
    created_at: Mapped[dt.datetime] = created_at_column()


class SilverTrackSighting(Base):
    """022: a bronze row a track was sighted in besides its first (``bronze_id``); was the
    track's ``additional_bronze_ids`` array (issue 17)."""

    __tablename__ = "silver_track_sightings"
    __table_args__ = (Index("ix_silver_track_sightings_silver_id", "silver_id"),)

    bronze_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    silver_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True),
        ForeignKey("silver_enriched_tracks.id", ondelete="CASCADE"),
        primary_key=True,
    )
    linked_at: Mapped[dt.datetime] = created_at_column()
