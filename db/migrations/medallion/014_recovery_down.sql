-- 014 down: drop what 014 added (006's tables are as they were before).
DROP INDEX IF EXISTS ix_silver_enriched_artists_bronze_ids;
DROP INDEX IF EXISTS ix_bronze_scraped_artists_created_at;
DROP INDEX IF EXISTS ix_bronze_scraped_playlists_created_at;
ALTER TABLE enrichment_lookups DROP COLUMN IF EXISTS leased_by;
DROP TABLE IF EXISTS maintenance_marks;
ALTER TABLE enrichment_lookups DROP COLUMN IF EXISTS leased_until;
DROP TABLE IF EXISTS failed_work;
