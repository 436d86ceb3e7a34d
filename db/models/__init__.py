"""Typed SQLAlchemy 2 models for every medallion table; ``Base.metadata`` covers all of them."""

from db.models.base import NAMING_CONVENTION, Base
from db.models.bronze import (
    BronzeApiEnrichment,
    BronzeScrapedArtist,
    BronzeScrapedPlaylist,
    BronzeScrapedTrack,
)
from db.models.config import (
    EnrichmentProvider,
    MetadataEnrichmentConfig,
    ProviderPerformanceHistory,
)
from db.models.gold import (
    GOLD_MATERIALIZED_VIEWS,
    GOLD_VIEWS,
    GoldArtistAnalytics,
    GoldArtistRefreshQueue,
    GoldPlaylistAnalytics,
    GoldTrackAnalytics,
    GoldTrackRefreshQueue,
)
from db.models.lineage import (
    DataQualityMetric,
    EnrichmentPipelineRun,
    EnrichmentTransformation,
    FieldProvenance,
    PipelineReplayQueue,
)
from db.models.monitoring import AlertEvent, AlertRule, AlertState
from db.models.operations import (
    EnrichmentFlight,
    EnrichmentJob,
    EnrichmentLookup,
    IngestQuarantine,
    PlaylistEntryFlag,
    SilverFieldCheck,
    SilverTrackArtist,
)
from db.models.recovery import (
    EnrichmentLookupAnswer,
    EnrichmentRequestReply,
    FailedWork,
    MaintenanceMark,
)
from db.models.silver import (
    SilverEnrichedArtist,
    SilverEnrichedPlaylist,
    SilverEnrichedTrack,
    SilverPlaylistTrack,
    SilverTrackAlias,
    SilverTrackSighting,
)

__all__ = [
    "GOLD_MATERIALIZED_VIEWS",
    "GOLD_VIEWS",
    "NAMING_CONVENTION",
    "AlertEvent",
    "AlertRule",
    "AlertState",
    "Base",
    "BronzeApiEnrichment",
    "BronzeScrapedArtist",
    "BronzeScrapedPlaylist",
    "BronzeScrapedTrack",
    "DataQualityMetric",
    "EnrichmentFlight",
    "EnrichmentJob",
    "EnrichmentLookup",
    "EnrichmentLookupAnswer",
    "EnrichmentPipelineRun",
    "EnrichmentProvider",
    "EnrichmentRequestReply",
    "EnrichmentTransformation",
    "FailedWork",
    "FieldProvenance",
    "GoldArtistAnalytics",
    "GoldArtistRefreshQueue",
    "GoldPlaylistAnalytics",
    "GoldTrackAnalytics",
    "GoldTrackRefreshQueue",
    "IngestQuarantine",
    "MaintenanceMark",
    "MetadataEnrichmentConfig",
    "PipelineReplayQueue",
    "PlaylistEntryFlag",
    "ProviderPerformanceHistory",
    "SilverEnrichedArtist",
    "SilverEnrichedPlaylist",
    "SilverEnrichedTrack",
    "SilverFieldCheck",
    "SilverPlaylistTrack",
    "SilverTrackAlias",
    "SilverTrackArtist",
    "SilverTrackSighting",
]
