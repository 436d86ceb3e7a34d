-- 004 waterfall configuration: provider registry, per-field priorities and thresholds (editable
-- in SQL, no deploy), provider performance history. Independent of 001-003.

CREATE TABLE IF NOT EXISTS enrichment_providers (
    provider_name         TEXT          NOT NULL,
    provider_type         TEXT          NOT NULL,
    base_url              TEXT,
    api_version           TEXT,
    supported_fields      TEXT[]        NOT NULL,
    rate_limit_per_second NUMERIC(8, 3),
    rate_limit_per_day    INTEGER,
    avg_confidence_score  NUMERIC(3, 2),
    avg_response_time_ms  INTEGER,
    success_rate          NUMERIC(5, 4),
    enabled               BOOLEAN       NOT NULL DEFAULT TRUE,
    health_status         TEXT          NOT NULL DEFAULT 'healthy',
    last_health_check     TIMESTAMPTZ,
    requires_auth         BOOLEAN       NOT NULL DEFAULT FALSE,
    auth_type             TEXT,
    created_at            TIMESTAMPTZ   NOT NULL DEFAULT now(),
    updated_at            TIMESTAMPTZ   NOT NULL DEFAULT now(),
    CONSTRAINT pk_enrichment_providers PRIMARY KEY (provider_name),
    CONSTRAINT ck_enrichment_providers_provider_type
        CHECK (provider_type IN ('api', 'scraper', 'manual')),
    CONSTRAINT ck_enrichment_providers_health_status
        CHECK (health_status IN ('healthy', 'degraded', 'down')),
    CONSTRAINT ck_enrichment_providers_avg_confidence_range
        CHECK (avg_confidence_score IS NULL OR avg_confidence_score BETWEEN 0 AND 1),
    CONSTRAINT ck_enrichment_providers_success_rate_range
        CHECK (success_rate IS NULL OR success_rate BETWEEN 0 AND 1),
    CONSTRAINT ck_enrichment_providers_rate_limits_positive
        CHECK ((rate_limit_per_second IS NULL OR rate_limit_per_second > 0)
           AND (rate_limit_per_day IS NULL OR rate_limit_per_day > 0))
);
CREATE INDEX IF NOT EXISTS ix_enrichment_providers_supported_fields
    ON enrichment_providers USING gin (supported_fields);

-- Slots reference the registry (the original had no FK, so a typo silently emptied a slot).
CREATE TABLE IF NOT EXISTS metadata_enrichment_config (
    metadata_field            TEXT         NOT NULL,
    priority_1_provider       TEXT,
    priority_1_confidence     NUMERIC(3, 2),
    priority_2_provider       TEXT,
    priority_2_confidence     NUMERIC(3, 2),
    priority_3_provider       TEXT,
    priority_3_confidence     NUMERIC(3, 2),
    priority_4_provider       TEXT,
    priority_4_confidence     NUMERIC(3, 2),
    enabled                   BOOLEAN      NOT NULL DEFAULT TRUE,
    retry_on_low_confidence   BOOLEAN      NOT NULL DEFAULT TRUE,
    min_acceptable_confidence NUMERIC(3, 2) NOT NULL DEFAULT 0.50,
    field_type                TEXT         NOT NULL,
    field_description         TEXT,
    required_for_gold         BOOLEAN      NOT NULL DEFAULT FALSE,
    validation_rules          JSONB,
    last_updated              TIMESTAMPTZ  NOT NULL DEFAULT now(),
    updated_by                TEXT,
    CONSTRAINT pk_metadata_enrichment_config PRIMARY KEY (metadata_field),
    CONSTRAINT fk_metadata_enrichment_config_priority_1_provider
        FOREIGN KEY (priority_1_provider) REFERENCES enrichment_providers (provider_name)
        ON UPDATE CASCADE,
    CONSTRAINT fk_metadata_enrichment_config_priority_2_provider
        FOREIGN KEY (priority_2_provider) REFERENCES enrichment_providers (provider_name)
        ON UPDATE CASCADE,
    CONSTRAINT fk_metadata_enrichment_config_priority_3_provider
        FOREIGN KEY (priority_3_provider) REFERENCES enrichment_providers (provider_name)
        ON UPDATE CASCADE,
    CONSTRAINT fk_metadata_enrichment_config_priority_4_provider
        FOREIGN KEY (priority_4_provider) REFERENCES enrichment_providers (provider_name)
        ON UPDATE CASCADE,
    CONSTRAINT ck_metadata_enrichment_config_confidence_range CHECK (
        coalesce(priority_1_confidence, 0) BETWEEN 0 AND 1
        AND coalesce(priority_2_confidence, 0) BETWEEN 0 AND 1
        AND coalesce(priority_3_confidence, 0) BETWEEN 0 AND 1
        AND coalesce(priority_4_confidence, 0) BETWEEN 0 AND 1
        AND min_acceptable_confidence BETWEEN 0 AND 1),
    CONSTRAINT ck_metadata_enrichment_config_field_type CHECK (field_type IN
        ('identifier', 'musical_attribute', 'metadata', 'text', 'date', 'numeric'))
);

CREATE TABLE IF NOT EXISTS provider_performance_history (
    id                   UUID          NOT NULL DEFAULT gen_random_uuid(),
    provider_name        TEXT          NOT NULL,
    metadata_field       TEXT          NOT NULL,
    request_count        INTEGER       NOT NULL DEFAULT 0,
    success_count        INTEGER       NOT NULL DEFAULT 0,
    success_rate         NUMERIC(5, 4) GENERATED ALWAYS AS (
        CASE WHEN request_count > 0 THEN success_count::NUMERIC / request_count ELSE 0 END
    ) STORED,
    avg_confidence       NUMERIC(3, 2),
    avg_response_time_ms INTEGER,
    period_start         TIMESTAMPTZ   NOT NULL,
    period_end           TIMESTAMPTZ   NOT NULL,
    created_at           TIMESTAMPTZ   NOT NULL DEFAULT now(),
    CONSTRAINT pk_provider_performance_history PRIMARY KEY (id),
    CONSTRAINT fk_provider_performance_history_provider_name
        FOREIGN KEY (provider_name) REFERENCES enrichment_providers (provider_name)
        ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT fk_provider_performance_history_metadata_field
        FOREIGN KEY (metadata_field) REFERENCES metadata_enrichment_config (metadata_field)
        ON DELETE CASCADE,
    CONSTRAINT uq_provider_performance_history_period
        UNIQUE (provider_name, metadata_field, period_start, period_end),
    CONSTRAINT ck_provider_performance_history_counts
        CHECK (request_count >= 0 AND success_count >= 0 AND success_count <= request_count),
    CONSTRAINT ck_provider_performance_history_avg_confidence_range
        CHECK (avg_confidence IS NULL OR avg_confidence BETWEEN 0 AND 1),
    CONSTRAINT ck_provider_performance_history_period CHECK (period_end >= period_start)
);

DROP TRIGGER IF EXISTS enrichment_providers_updated_at ON enrichment_providers;
CREATE OR REPLACE FUNCTION waterfall_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;
CREATE TRIGGER enrichment_providers_updated_at BEFORE UPDATE
    ON enrichment_providers FOR EACH ROW EXECUTE FUNCTION waterfall_touch_updated_at();

-- Seeds: ON CONFLICT DO NOTHING keeps operators' edits when the file is re-run.
INSERT INTO enrichment_providers
    (provider_name, provider_type, base_url, supported_fields, rate_limit_per_second,
     requires_auth, auth_type)
VALUES
    ('spotify', 'api', 'https://api.spotify.com/v1',
     ARRAY['spotify_id', 'isrc', 'release_date', 'duration_ms', 'bpm', 'key', 'energy', 'valence',
           'danceability', 'genre'], 3, TRUE, 'oauth'),
    ('beatport', 'api', 'https://api.beatport.com/v4',
     ARRAY['beatport_id', 'bpm', 'key', 'genre', 'release_date'], 1, TRUE, 'api_key'),
    ('musicbrainz', 'api', 'https://musicbrainz.org/ws/2',
     ARRAY['musicbrainz_id', 'isrc', 'release_date', 'artist_name', 'track_title'], 0.9, FALSE,
     'none'),
    ('lastfm', 'api', 'https://ws.audioscrobbler.com/2.0',
     ARRAY['genre', 'play_count', 'tags'], 0.5, TRUE, 'api_key'),
    ('acousticbrainz', 'api', 'https://acousticbrainz.org/api/v1',
     ARRAY['bpm', 'key', 'energy', 'danceability'], 2, FALSE, 'none'),
    ('discogs', 'api', 'https://api.discogs.com',
     ARRAY['discogs_id', 'release_date', 'genre', 'artist_name'], 0.9, TRUE, 'oauth'),
    ('1001tracklists', 'scraper', NULL,
     ARRAY['artist_name', 'track_title', 'playlist_context'], NULL, FALSE, 'none'),
    ('mixesdb', 'scraper', NULL, ARRAY['artist_name', 'track_title', 'bpm', 'key'], NULL, FALSE,
     'none'),
    -- Known to the registry but in no waterfall slot until an operator puts them in one.
    ('deezer', 'api', 'https://api.deezer.com',
     ARRAY['deezer_id', 'isrc', 'bpm', 'duration_ms', 'release_date', 'artist_name',
           'track_title'], 10, FALSE, 'none'),
    ('getsongbpm', 'api', 'https://api.getsong.co', ARRAY['bpm', 'key'], 1, TRUE, 'api_key'),
    ('tidal', 'api', 'https://openapi.tidal.com',
     ARRAY['tidal_id', 'isrc', 'duration_ms', 'release_date', 'artist_name', 'track_title'], 1,
     TRUE, 'oauth')
ON CONFLICT (provider_name) DO NOTHING;

INSERT INTO metadata_enrichment_config
    (metadata_field, field_type, required_for_gold, min_acceptable_confidence,
     priority_1_provider, priority_1_confidence, priority_2_provider, priority_2_confidence,
     priority_3_provider, priority_3_confidence, priority_4_provider, priority_4_confidence)
VALUES
    ('spotify_id', 'identifier', TRUE, 0.95, 'spotify', 1.00, NULL, NULL, NULL, NULL, NULL, NULL),
    ('isrc', 'identifier', FALSE, 0.85,
     'spotify', 0.95, 'musicbrainz', 0.90, NULL, NULL, NULL, NULL),
    ('musicbrainz_id', 'identifier', FALSE, 0.90,
     'musicbrainz', 1.00, NULL, NULL, NULL, NULL, NULL, NULL),
    ('beatport_id', 'identifier', FALSE, 0.90, 'beatport', 1.00, NULL, NULL, NULL, NULL, NULL, NULL),
    ('bpm', 'musical_attribute', TRUE, 0.70,
     'beatport', 0.98, 'spotify', 0.85, 'acousticbrainz', 0.75, 'mixesdb', 0.60),
    ('key', 'musical_attribute', TRUE, 0.70,
     'beatport', 0.95, 'spotify', 0.85, 'acousticbrainz', 0.70, 'mixesdb', 0.60),
    ('energy', 'musical_attribute', FALSE, 0.60,
     'spotify', 0.90, 'acousticbrainz', 0.75, NULL, NULL, NULL, NULL),
    ('danceability', 'musical_attribute', FALSE, 0.60,
     'spotify', 0.90, 'acousticbrainz', 0.75, NULL, NULL, NULL, NULL),
    ('valence', 'musical_attribute', FALSE, 0.60, 'spotify', 0.90, NULL, NULL, NULL, NULL, NULL, NULL),
    ('genre', 'metadata', TRUE, 0.60,
     'beatport', 0.90, 'spotify', 0.85, 'lastfm', 0.70, 'discogs', 0.65),
    ('release_date', 'date', FALSE, 0.75,
     'musicbrainz', 0.90, 'spotify', 0.88, 'beatport', 0.85, 'discogs', 0.80),
    ('duration_ms', 'numeric', FALSE, 0.80,
     'spotify', 0.95, 'musicbrainz', 0.85, NULL, NULL, NULL, NULL),
    ('artist_name', 'text', TRUE, 0.70,
     'spotify', 0.95, 'musicbrainz', 0.90, 'beatport', 0.85, '1001tracklists', 0.70),
    ('track_title', 'text', TRUE, 0.70,
     'spotify', 0.95, 'musicbrainz', 0.90, 'beatport', 0.85, '1001tracklists', 0.70)
ON CONFLICT (metadata_field) DO NOTHING;

CREATE OR REPLACE VIEW enrichment_waterfall_summary AS
SELECT c.metadata_field,
       c.field_type,
       c.required_for_gold,
       c.min_acceptable_confidence,
       jsonb_strip_nulls(jsonb_build_object(
           'priority_1', CASE WHEN c.priority_1_provider IS NOT NULL THEN jsonb_build_object(
               'provider', c.priority_1_provider, 'min_confidence', c.priority_1_confidence) END,
           'priority_2', CASE WHEN c.priority_2_provider IS NOT NULL THEN jsonb_build_object(
               'provider', c.priority_2_provider, 'min_confidence', c.priority_2_confidence) END,
           'priority_3', CASE WHEN c.priority_3_provider IS NOT NULL THEN jsonb_build_object(
               'provider', c.priority_3_provider, 'min_confidence', c.priority_3_confidence) END,
           'priority_4', CASE WHEN c.priority_4_provider IS NOT NULL THEN jsonb_build_object(
               'provider', c.priority_4_provider, 'min_confidence', c.priority_4_confidence) END
       )) AS waterfall
FROM metadata_enrichment_config c
WHERE c.enabled
ORDER BY c.field_type, c.metadata_field;

-- The live waterfall for one field: configured slots in priority order, minus excluded
-- providers and providers that are disabled or down. A NULL exclusion list means "exclude
-- nothing" (the original returned zero rows). `priority` is the configured slot number.
CREATE OR REPLACE FUNCTION get_provider_priority(
    field TEXT, exclude_providers TEXT[] DEFAULT '{}'
) RETURNS TABLE (priority INTEGER, provider TEXT, min_confidence NUMERIC(3, 2))
LANGUAGE sql STABLE AS $$
    SELECT slot.priority, slot.provider, slot.min_confidence
    FROM metadata_enrichment_config c
    CROSS JOIN LATERAL (VALUES
        (1, c.priority_1_provider, c.priority_1_confidence),
        (2, c.priority_2_provider, c.priority_2_confidence),
        (3, c.priority_3_provider, c.priority_3_confidence),
        (4, c.priority_4_provider, c.priority_4_confidence)
    ) AS slot(priority, provider, min_confidence)
    JOIN enrichment_providers p ON p.provider_name = slot.provider
    WHERE c.metadata_field = get_provider_priority.field
      AND c.enabled
      AND p.enabled
      AND p.health_status <> 'down'
      AND NOT (slot.provider = ANY (coalesce(get_provider_priority.exclude_providers, '{}')))
    ORDER BY slot.priority;
$$;
