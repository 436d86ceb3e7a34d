-- 011 down: the raw_json-only bronze keys again. Fails (unique violation) if bronze holds rows
-- that differ only in fields other than raw_json (corrections): restoring the old key would mean
-- deleting bronze rows, which this migration will not do.
ALTER TABLE ingest_quarantine DROP CONSTRAINT IF EXISTS ck_ingest_quarantine_scope;
ALTER TABLE ingest_quarantine DROP COLUMN IF EXISTS scope;

ALTER TABLE bronze_scraped_artists DROP CONSTRAINT IF EXISTS uq_bronze_scraped_artists_identity;
ALTER TABLE bronze_scraped_artists DROP COLUMN IF EXISTS fields_hash;
ALTER TABLE bronze_scraped_artists ADD CONSTRAINT uq_bronze_scraped_artists_identity
    UNIQUE NULLS NOT DISTINCT (source, source_url, source_artist_id, content_hash);

ALTER TABLE bronze_scraped_tracks DROP CONSTRAINT IF EXISTS uq_bronze_scraped_tracks_identity;
ALTER TABLE bronze_scraped_tracks DROP COLUMN IF EXISTS fields_hash;
ALTER TABLE bronze_scraped_tracks ADD CONSTRAINT uq_bronze_scraped_tracks_identity
    UNIQUE NULLS NOT DISTINCT (source, source_url, source_track_id, playlist_id, position, content_hash);

ALTER TABLE bronze_scraped_playlists DROP CONSTRAINT IF EXISTS uq_bronze_scraped_playlists_identity;
ALTER TABLE bronze_scraped_playlists DROP COLUMN IF EXISTS fields_hash;
ALTER TABLE bronze_scraped_playlists ADD CONSTRAINT uq_bronze_scraped_playlists_identity
    UNIQUE NULLS NOT DISTINCT (source, source_url, source_playlist_id, content_hash);
