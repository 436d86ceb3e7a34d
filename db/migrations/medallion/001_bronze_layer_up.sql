-- 001 bronze layer: raw payloads exactly as received, append-only.
-- Re-runnable (IF NOT EXISTS / CREATE OR REPLACE / DROP TRIGGER IF EXISTS) and free of psql
-- meta-commands, so it applies with `psql -v ON_ERROR_STOP=1 -f`, concatenated, or via Alembic.
-- No extensions: gen_random_uuid() is core since PostgreSQL 13.

-- Immutability is enforced by the database, not by convention: any UPDATE, DELETE or TRUNCATE
-- on a bronze table raises. DROP TABLE (down migrations, partition retention) fires no trigger.
CREATE OR REPLACE FUNCTION bronze_reject_mutation() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only (bronze layer): % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'prohibited_sql_statement_attempted',
              HINT = 'Bronze rows are immutable; append a new row instead.';
END;
$$;

CREATE TABLE IF NOT EXISTS bronze_scraped_playlists (
    id                 UUID        NOT NULL DEFAULT gen_random_uuid(),
    source             TEXT        NOT NULL,
    source_url         TEXT        NOT NULL,
    source_playlist_id TEXT,
    scraper_version    TEXT        NOT NULL,
    raw_json           JSONB       NOT NULL,
    -- Idempotency: a redelivered identical payload hashes the same; a changed re-scrape does not.
    content_hash       TEXT        GENERATED ALWAYS AS (md5(raw_json::text)) STORED,
    playlist_name      TEXT,
    artist_name        TEXT,
    event_name         TEXT,
    event_date         DATE,
    scraped_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_bronze_scraped_playlists PRIMARY KEY (id),
    -- NULLS NOT DISTINCT: a NULL source_playlist_id must not let duplicates through.
    CONSTRAINT uq_bronze_scraped_playlists_identity UNIQUE NULLS NOT DISTINCT
        (source, source_url, source_playlist_id, content_hash)
);
CREATE INDEX IF NOT EXISTS ix_bronze_scraped_playlists_source ON bronze_scraped_playlists (source);
CREATE INDEX IF NOT EXISTS ix_bronze_scraped_playlists_scraped_at
    ON bronze_scraped_playlists (scraped_at DESC);
CREATE INDEX IF NOT EXISTS ix_bronze_scraped_playlists_raw_json
    ON bronze_scraped_playlists USING gin (raw_json);

CREATE TABLE IF NOT EXISTS bronze_scraped_tracks (
    id              UUID        NOT NULL DEFAULT gen_random_uuid(),
    source          TEXT        NOT NULL,
    source_url      TEXT        NOT NULL,
    source_track_id TEXT,
    scraper_version TEXT        NOT NULL,
    raw_json        JSONB       NOT NULL,
    content_hash    TEXT        GENERATED ALWAYS AS (md5(raw_json::text)) STORED,
    artist_name     TEXT,
    track_title     TEXT,
    -- The original scrapers wrote these without any migration creating them (schema drift).
    playlist_id     UUID,
    position        INTEGER,
    scraped_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_bronze_scraped_tracks PRIMARY KEY (id),
    CONSTRAINT fk_bronze_scraped_tracks_playlist_id
        FOREIGN KEY (playlist_id) REFERENCES bronze_scraped_playlists (id),
    CONSTRAINT ck_bronze_scraped_tracks_position_positive CHECK (position IS NULL OR position >= 0),
    -- The same payload at two positions of a set (a track played twice) is two appearances.
    CONSTRAINT uq_bronze_scraped_tracks_identity UNIQUE NULLS NOT DISTINCT
        (source, source_url, source_track_id, playlist_id, position, content_hash)
);
CREATE INDEX IF NOT EXISTS ix_bronze_scraped_tracks_source ON bronze_scraped_tracks (source);
CREATE INDEX IF NOT EXISTS ix_bronze_scraped_tracks_scraped_at
    ON bronze_scraped_tracks (scraped_at DESC);
CREATE INDEX IF NOT EXISTS ix_bronze_scraped_tracks_playlist_id
    ON bronze_scraped_tracks (playlist_id) WHERE playlist_id IS NOT NULL;
-- jsonb_path_ops: serves containment (raw_json @> '{...}') at a fraction of the write cost of
-- the default GIN opclass on the hottest append path; key-existence (?) queries are not indexed.
CREATE INDEX IF NOT EXISTS ix_bronze_scraped_tracks_raw_json
    ON bronze_scraped_tracks USING gin (raw_json jsonb_path_ops);

CREATE TABLE IF NOT EXISTS bronze_scraped_artists (
    id               UUID        NOT NULL DEFAULT gen_random_uuid(),
    source           TEXT        NOT NULL,
    source_url       TEXT,
    source_artist_id TEXT,
    scraper_version  TEXT        NOT NULL,
    raw_json         JSONB       NOT NULL,
    content_hash     TEXT        GENERATED ALWAYS AS (md5(raw_json::text)) STORED,
    artist_name      TEXT        NOT NULL,
    aliases          TEXT[],
    scraped_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_bronze_scraped_artists PRIMARY KEY (id),
    CONSTRAINT uq_bronze_scraped_artists_identity UNIQUE NULLS NOT DISTINCT
        (source, source_url, source_artist_id, content_hash)
);
CREATE INDEX IF NOT EXISTS ix_bronze_scraped_artists_source ON bronze_scraped_artists (source);
CREATE INDEX IF NOT EXISTS ix_bronze_scraped_artists_artist_name
    ON bronze_scraped_artists (artist_name);
CREATE INDEX IF NOT EXISTS ix_bronze_scraped_artists_raw_json
    ON bronze_scraped_artists USING gin (raw_json);

CREATE TABLE IF NOT EXISTS bronze_api_enrichments (
    id              UUID        NOT NULL DEFAULT gen_random_uuid(),
    bronze_track_id UUID,
    api_provider    TEXT        NOT NULL,
    api_endpoint    TEXT        NOT NULL,
    api_version     TEXT,
    request_params  JSONB,
    raw_response    JSONB       NOT NULL,
    response_status INTEGER     NOT NULL,
    fetched_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_bronze_api_enrichments PRIMARY KEY (id),
    CONSTRAINT fk_bronze_api_enrichments_bronze_track_id
        FOREIGN KEY (bronze_track_id) REFERENCES bronze_scraped_tracks (id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS ix_bronze_api_enrichments_api_provider
    ON bronze_api_enrichments (api_provider);
CREATE INDEX IF NOT EXISTS ix_bronze_api_enrichments_bronze_track_id
    ON bronze_api_enrichments (bronze_track_id) WHERE bronze_track_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS ix_bronze_api_enrichments_fetched_at
    ON bronze_api_enrichments (fetched_at DESC);

-- Row triggers catch UPDATE/DELETE, the statement trigger catches TRUNCATE (which fires no row
-- triggers). Dropped and recreated so the file stays re-runnable.
DROP TRIGGER IF EXISTS bronze_scraped_playlists_append_only ON bronze_scraped_playlists;
CREATE TRIGGER bronze_scraped_playlists_append_only BEFORE UPDATE OR DELETE
    ON bronze_scraped_playlists FOR EACH ROW EXECUTE FUNCTION bronze_reject_mutation();
DROP TRIGGER IF EXISTS bronze_scraped_playlists_no_truncate ON bronze_scraped_playlists;
CREATE TRIGGER bronze_scraped_playlists_no_truncate BEFORE TRUNCATE
    ON bronze_scraped_playlists FOR EACH STATEMENT EXECUTE FUNCTION bronze_reject_mutation();

DROP TRIGGER IF EXISTS bronze_scraped_tracks_append_only ON bronze_scraped_tracks;
CREATE TRIGGER bronze_scraped_tracks_append_only BEFORE UPDATE OR DELETE
    ON bronze_scraped_tracks FOR EACH ROW EXECUTE FUNCTION bronze_reject_mutation();
DROP TRIGGER IF EXISTS bronze_scraped_tracks_no_truncate ON bronze_scraped_tracks;
CREATE TRIGGER bronze_scraped_tracks_no_truncate BEFORE TRUNCATE
    ON bronze_scraped_tracks FOR EACH STATEMENT EXECUTE FUNCTION bronze_reject_mutation();

DROP TRIGGER IF EXISTS bronze_scraped_artists_append_only ON bronze_scraped_artists;
CREATE TRIGGER bronze_scraped_artists_append_only BEFORE UPDATE OR DELETE
    ON bronze_scraped_artists FOR EACH ROW EXECUTE FUNCTION bronze_reject_mutation();
DROP TRIGGER IF EXISTS bronze_scraped_artists_no_truncate ON bronze_scraped_artists;
CREATE TRIGGER bronze_scraped_artists_no_truncate BEFORE TRUNCATE
    ON bronze_scraped_artists FOR EACH STATEMENT EXECUTE FUNCTION bronze_reject_mutation();

DROP TRIGGER IF EXISTS bronze_api_enrichments_append_only ON bronze_api_enrichments;
CREATE TRIGGER bronze_api_enrichments_append_only BEFORE UPDATE OR DELETE
    ON bronze_api_enrichments FOR EACH ROW EXECUTE FUNCTION bronze_reject_mutation();
DROP TRIGGER IF EXISTS bronze_api_enrichments_no_truncate ON bronze_api_enrichments;
CREATE TRIGGER bronze_api_enrichments_no_truncate BEFORE TRUNCATE
    ON bronze_api_enrichments FOR EACH STATEMENT EXECUTE FUNCTION bronze_reject_mutation();
