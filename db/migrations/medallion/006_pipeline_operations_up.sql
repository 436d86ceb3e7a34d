-- 006 pipeline operations: what the Celery pipeline needs beyond the seed's five migrations.
--   * ingest_quarantine: envelopes that failed validation, with the reason and the original bytes
--     (nothing a scraper sends is ever dropped);
--   * enrichment_jobs / enrichment_lookups: the fan-out/fan-in join of one record's provider
--     lookups, kept in PostgreSQL so it survives redelivery and killed workers and does not
--     depend on a Celery result backend;
--   * waterfall_mode per field (sequential | parallel) and cost per provider call;
--   * run_id on bronze_api_enrichments so a replay finds the responses of one run.
--   * silver_track_artists: which silver artists perform a silver track (artist analytics);
--   * one silver playlist per bronze playlist.
-- Re-runnable, no psql meta-commands (applies with psql, concatenated, or through Alembic).

CREATE TABLE IF NOT EXISTS ingest_quarantine (
    id             UUID        NOT NULL DEFAULT gen_random_uuid(),
    kind           TEXT,
    source         TEXT,
    reason         TEXT        NOT NULL,
    error_detail   JSONB       NOT NULL DEFAULT '[]'::jsonb,
    raw_bytes      BYTEA       NOT NULL,
    byte_length    INTEGER     NOT NULL,
    content_sha256 TEXT        NOT NULL,
    received_via   TEXT        NOT NULL,
    received_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_ingest_quarantine PRIMARY KEY (id),
    -- A redelivered bad message is quarantined once.
    CONSTRAINT uq_ingest_quarantine_content_sha256 UNIQUE (content_sha256),
    CONSTRAINT ck_ingest_quarantine_received_via CHECK (received_via IN ('task', 'cli', 'api'))
);
CREATE INDEX IF NOT EXISTS ix_ingest_quarantine_received_at ON ingest_quarantine (received_at DESC);

ALTER TABLE metadata_enrichment_config
    ADD COLUMN IF NOT EXISTS waterfall_mode TEXT NOT NULL DEFAULT 'sequential';
ALTER TABLE metadata_enrichment_config
    DROP CONSTRAINT IF EXISTS ck_metadata_enrichment_config_waterfall_mode;
ALTER TABLE metadata_enrichment_config
    ADD CONSTRAINT ck_metadata_enrichment_config_waterfall_mode
    CHECK (waterfall_mode IN ('sequential', 'parallel'));

ALTER TABLE enrichment_providers
    ADD COLUMN IF NOT EXISTS cost_per_call_usd NUMERIC(10, 6) NOT NULL DEFAULT 0;
ALTER TABLE enrichment_providers
    DROP CONSTRAINT IF EXISTS ck_enrichment_providers_cost_per_call_usd;
ALTER TABLE enrichment_providers
    ADD CONSTRAINT ck_enrichment_providers_cost_per_call_usd CHECK (cost_per_call_usd >= 0);

ALTER TABLE bronze_api_enrichments ADD COLUMN IF NOT EXISTS run_id UUID;
CREATE INDEX IF NOT EXISTS ix_bronze_api_enrichments_track_provider
    ON bronze_api_enrichments (bronze_track_id, api_provider, fetched_at);

CREATE TABLE IF NOT EXISTS enrichment_jobs (
    id              UUID        NOT NULL DEFAULT gen_random_uuid(),
    run_id          UUID        NOT NULL,
    bronze_track_id UUID        NOT NULL,
    status          TEXT        NOT NULL DEFAULT 'enriching',
    round           INTEGER     NOT NULL DEFAULT 1,
    fields          TEXT[],
    replay_mode     TEXT,
    silver_track_id UUID,
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    merged_at       TIMESTAMPTZ,
    CONSTRAINT pk_enrichment_jobs PRIMARY KEY (id),
    CONSTRAINT fk_enrichment_jobs_run_id_enrichment_pipeline_runs
        FOREIGN KEY (run_id) REFERENCES enrichment_pipeline_runs (id) ON DELETE CASCADE,
    CONSTRAINT fk_enrichment_jobs_bronze_track_id_bronze_scraped_tracks
        FOREIGN KEY (bronze_track_id) REFERENCES bronze_scraped_tracks (id),
    CONSTRAINT fk_enrichment_jobs_silver_track_id_silver_enriched_tracks
        FOREIGN KEY (silver_track_id) REFERENCES silver_enriched_tracks (id) ON DELETE SET NULL,
    CONSTRAINT uq_enrichment_jobs_run_bronze UNIQUE (run_id, bronze_track_id),
    CONSTRAINT ck_enrichment_jobs_status
        CHECK (status IN ('enriching', 'merging', 'merged', 'failed')),
    CONSTRAINT ck_enrichment_jobs_replay_mode
        CHECK (replay_mode IS NULL OR replay_mode IN ('stored', 'live'))
);
CREATE INDEX IF NOT EXISTS ix_enrichment_jobs_open
    ON enrichment_jobs (status, updated_at) WHERE status IN ('enriching', 'merging');
CREATE INDEX IF NOT EXISTS ix_enrichment_jobs_bronze_track_id ON enrichment_jobs (bronze_track_id);
-- "Is this run finished?" is asked after every merge: answer it from open jobs only.
CREATE INDEX IF NOT EXISTS ix_enrichment_jobs_run_open
    ON enrichment_jobs (run_id) WHERE status IN ('enriching', 'merging');

CREATE TABLE IF NOT EXISTS enrichment_lookups (
    job_id     UUID          NOT NULL,
    provider   TEXT          NOT NULL,
    round      INTEGER       NOT NULL,
    fields     TEXT[]        NOT NULL,
    status     TEXT          NOT NULL DEFAULT 'pending',
    attempts   INTEGER       NOT NULL DEFAULT 0,
    api_calls  INTEGER       NOT NULL DEFAULT 0,
    cost_usd   NUMERIC(10, 6) NOT NULL DEFAULT 0,
    latency_ms INTEGER,
    error      TEXT,
    created_at TIMESTAMPTZ   NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ   NOT NULL DEFAULT now(),
    CONSTRAINT pk_enrichment_lookups PRIMARY KEY (job_id, provider),
    CONSTRAINT fk_enrichment_lookups_job_id_enrichment_jobs
        FOREIGN KEY (job_id) REFERENCES enrichment_jobs (id) ON DELETE CASCADE,
    CONSTRAINT ck_enrichment_lookups_status CHECK (
        status IN ('pending', 'found', 'not_found', 'unavailable', 'failed', 'skipped')
    )
);
CREATE INDEX IF NOT EXISTS ix_enrichment_lookups_pending
    ON enrichment_lookups (provider, updated_at) WHERE status = 'pending';

CREATE TABLE IF NOT EXISTS silver_track_artists (
    track_id   UUID    NOT NULL,
    artist_id  UUID    NOT NULL,
    position   INTEGER NOT NULL DEFAULT 0,
    CONSTRAINT pk_silver_track_artists PRIMARY KEY (track_id, artist_id),
    CONSTRAINT fk_silver_track_artists_track_id_silver_enriched_tracks
        FOREIGN KEY (track_id) REFERENCES silver_enriched_tracks (id) ON DELETE CASCADE,
    CONSTRAINT fk_silver_track_artists_artist_id_silver_enriched_artists
        FOREIGN KEY (artist_id) REFERENCES silver_enriched_artists (id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS ix_silver_track_artists_artist_id ON silver_track_artists (artist_id);

CREATE UNIQUE INDEX IF NOT EXISTS uq_silver_enriched_playlists_bronze_id
    ON silver_enriched_playlists (bronze_id) WHERE bronze_id IS NOT NULL;
