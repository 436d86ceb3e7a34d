"""Gold: denormalised analytics, one row per silver entity (the gold views are SQL-only)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, Numeric, Text, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base, TimestampTZ, created_at_column, uuid_pk

__all__ = [
    "GOLD_MATERIALIZED_VIEWS",
    "GOLD_VIEWS",
    "GoldArtistAnalytics",
    "GoldArtistRefreshQueue",
    "GoldPlaylistAnalytics",
    "GoldTrackAnalytics",
    "GoldTrackRefreshQueue",
]

# The gold views are not mapped: they are read with plain SQL.
# Materialised (003), refreshed by refresh_gold_materialized_views():
GOLD_MATERIALIZED_VIEWS = (
    "gold_top_tracks_by_genre",
    "gold_artist_collaboration_network",
)
# Plain views, computed on read (007: one track's harmonic suggestions through
# harmonic_recommendations_for(), always current, nothing to refresh):
GOLD_VIEWS = ("gold_harmonic_mixing_recommendations",)


def _now() -> Mapped[dt.datetime]:
    return mapped_column(TimestampTZ, nullable=False, server_default=text("now()"))


def _zero() -> Mapped[int]:
    return mapped_column(Integer, nullable=False, server_default=text("0"))


class GoldTrackAnalytics(Base):
    """Analytics row of one silver track (upserted ON CONFLICT (silver_track_id))."""

    __tablename__ = "gold_track_analytics"
    __table_args__ = (
        Index("ix_gold_track_analytics_key_bpm", "key", "bpm"),
        Index("ix_gold_track_analytics_artist_name", "artist_name"),
        Index(
            "ix_gold_track_analytics_genre_primary",
            "genre_primary",
            postgresql_where=text("genre_primary IS NOT NULL"),
        ),
        Index("ix_gold_track_analytics_genres", "genres", postgresql_using="gin"),
        Index("ix_gold_track_analytics_playlist_appearances", text("playlist_appearances DESC")),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    silver_track_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True),
        ForeignKey("silver_enriched_tracks.id", ondelete="CASCADE"),
        unique=True,
    )
    artist_name: Mapped[str | None] = mapped_column(Text)
    track_title: Mapped[str | None] = mapped_column(Text)
    full_track_name: Mapped[str] = mapped_column(Text)
    spotify_id: Mapped[str | None] = mapped_column(Text)
    isrc: Mapped[str | None] = mapped_column(Text)
    bpm: Mapped[Decimal | None] = mapped_column(Numeric(6, 2))
    key: Mapped[str | None] = mapped_column(Text)
    genre_primary: Mapped[str | None] = mapped_column(Text)
    genres: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    energy: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    valence: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    danceability: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    play_count: Mapped[int] = _zero()
    playlist_appearances: Mapped[int] = _zero()
    last_played_at: Mapped[dt.datetime | None] = mapped_column(TimestampTZ)
    first_seen_at: Mapped[dt.datetime | None] = mapped_column(TimestampTZ)
    compatible_keys: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    key_family: Mapped[str | None] = mapped_column(Text)
    data_quality_score: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    enrichment_completeness: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    created_at: Mapped[dt.datetime] = created_at_column()
    updated_at: Mapped[dt.datetime] = _now()
    last_analyzed_at: Mapped[dt.datetime] = _now()


class GoldArtistRefreshQueue(Base):
    """019: an artist whose gold aggregates are owed (``tasks.gold.update_artists`` claims it)."""

    __tablename__ = "gold_artist_refresh_queue"
    __table_args__ = (Index("ix_gold_artist_refresh_queue_marked_at", "marked_at"),)

    artist_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True),
        ForeignKey("silver_enriched_artists.id", ondelete="CASCADE"),
        primary_key=True,
    )
    marked_at: Mapped[dt.datetime] = _now()


class GoldTrackRefreshQueue(Base):
    """023: a track whose gold appearances are owed (``tasks.gold.update_owed_tracks``)."""

    __tablename__ = "gold_track_refresh_queue"
    __table_args__ = (Index("ix_gold_track_refresh_queue_marked_at", "marked_at"),)

    track_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True),
        ForeignKey("silver_enriched_tracks.id", ondelete="CASCADE"),
        primary_key=True,
    )
    marked_at: Mapped[dt.datetime] = _now()


class GoldArtistAnalytics(Base):
    """Analytics row of one silver artist."""

    __tablename__ = "gold_artist_analytics"
    __table_args__ = (Index("ix_gold_artist_analytics_artist_name", "artist_name"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    silver_artist_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True),
        ForeignKey("silver_enriched_artists.id", ondelete="CASCADE"),
        unique=True,
    )
    artist_name: Mapped[str] = mapped_column(Text)
    aliases: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    primary_genre: Mapped[str | None] = mapped_column(Text)
    genres: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    spotify_id: Mapped[str | None] = mapped_column(Text)
    musicbrainz_id: Mapped[str | None] = mapped_column(Text)
    beatport_id: Mapped[str | None] = mapped_column(Text)
    total_tracks: Mapped[int] = _zero()
    total_playlists: Mapped[int] = _zero()
    total_appearances: Mapped[int] = _zero()
    collaboration_count: Mapped[int] = _zero()
    avg_bpm: Mapped[Decimal | None] = mapped_column(Numeric(6, 2))
    avg_energy: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    avg_danceability: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    most_common_key: Mapped[str | None] = mapped_column(Text)
    popularity_score: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    trending_score: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    first_appearance_date: Mapped[dt.date | None] = mapped_column(Date)
    last_appearance_date: Mapped[dt.date | None] = mapped_column(Date)
    most_active_year: Mapped[int | None] = mapped_column(Integer)
    data_quality_score: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    created_at: Mapped[dt.datetime] = created_at_column()
    updated_at: Mapped[dt.datetime] = _now()
    last_analyzed_at: Mapped[dt.datetime] = _now()


class GoldPlaylistAnalytics(Base):
    """Analytics row of one silver playlist (headliner + featured artists feed the network)."""

    __tablename__ = "gold_playlist_analytics"
    __table_args__ = (
        Index(
            "ix_gold_playlist_analytics_event_date",
            "event_date",
            postgresql_where=text("event_date IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    silver_playlist_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True),
        ForeignKey("silver_enriched_playlists.id", ondelete="CASCADE"),
        unique=True,
    )
    playlist_name: Mapped[str] = mapped_column(Text)
    artist_name: Mapped[str | None] = mapped_column(Text)
    event_name: Mapped[str | None] = mapped_column(Text)
    event_date: Mapped[dt.date | None] = mapped_column(Date)
    event_location: Mapped[str | None] = mapped_column(Text)
    track_count: Mapped[int] = _zero()
    total_duration_ms: Mapped[int | None] = mapped_column(BigInteger)
    avg_bpm: Mapped[Decimal | None] = mapped_column(Numeric(6, 2))
    avg_energy: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    genre_distribution: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    primary_genre: Mapped[str | None] = mapped_column(Text)
    key_changes: Mapped[int | None] = mapped_column(Integer)
    harmonic_flow_score: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    energy_curve: Mapped[Any | None] = mapped_column(JSONB)
    featured_artists: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    collaboration_count: Mapped[int] = _zero()
    data_quality_score: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    track_identification_rate: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    created_at: Mapped[dt.datetime] = created_at_column()
    updated_at: Mapped[dt.datetime] = _now()
    last_analyzed_at: Mapped[dt.datetime] = _now()
    # 012: the pairs the harmonic flow counted, how many were compatible, and the graded score.
    harmonic_transitions: Mapped[int | None] = mapped_column(Integer)
    compatible_transitions: Mapped[int | None] = mapped_column(Integer)
    harmonic_flow_graded: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
