-- 011 envelope idempotency: the bronze key covers every stored envelope field, not only raw_json
-- (a re-scrape that corrects track_title with raw_json unchanged was counted as a duplicate and
-- lost). fields_hash is the sha256 of every stored field except raw_json (which content_hash
-- already covers in its jsonb form), as received, written by db.bronze on insert; scraped_at
-- counts as sent (absent = null), so an exact redelivery still hashes the same.
-- Rows from before 011 (and rows written by hand) have fields_hash NULL; NULLS NOT DISTINCT keeps
-- them deduplicating among themselves exactly as before. Needs 001 and 006. Re-runnable.
ALTER TABLE bronze_scraped_playlists ADD COLUMN IF NOT EXISTS fields_hash TEXT;
ALTER TABLE bronze_scraped_playlists DROP CONSTRAINT IF EXISTS uq_bronze_scraped_playlists_identity;
ALTER TABLE bronze_scraped_playlists ADD CONSTRAINT uq_bronze_scraped_playlists_identity
    UNIQUE NULLS NOT DISTINCT (source, source_url, source_playlist_id, content_hash, fields_hash);

ALTER TABLE bronze_scraped_tracks ADD COLUMN IF NOT EXISTS fields_hash TEXT;
ALTER TABLE bronze_scraped_tracks DROP CONSTRAINT IF EXISTS uq_bronze_scraped_tracks_identity;
ALTER TABLE bronze_scraped_tracks ADD CONSTRAINT uq_bronze_scraped_tracks_identity
    UNIQUE NULLS NOT DISTINCT
    (source, source_url, source_track_id, playlist_id, position, content_hash, fields_hash);

ALTER TABLE bronze_scraped_artists ADD COLUMN IF NOT EXISTS fields_hash TEXT;
ALTER TABLE bronze_scraped_artists DROP CONSTRAINT IF EXISTS uq_bronze_scraped_artists_identity;
ALTER TABLE bronze_scraped_artists ADD CONSTRAINT uq_bronze_scraped_artists_identity
    UNIQUE NULLS NOT DISTINCT (source, source_url, source_artist_id, content_hash, fields_hash);

-- A batch that is not a batch at all (ingest_batch.delay(None)) is kept whole: scope 'batch'.
ALTER TABLE ingest_quarantine ADD COLUMN IF NOT EXISTS scope TEXT NOT NULL DEFAULT 'message';
ALTER TABLE ingest_quarantine DROP CONSTRAINT IF EXISTS ck_ingest_quarantine_scope;
ALTER TABLE ingest_quarantine ADD CONSTRAINT ck_ingest_quarantine_scope
    CHECK (scope IN ('message', 'batch'));
