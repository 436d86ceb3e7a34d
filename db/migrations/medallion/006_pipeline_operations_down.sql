-- 006 down: remove what 006_pipeline_operations_up.sql added, in reverse order.
DROP INDEX IF EXISTS uq_silver_enriched_playlists_bronze_id;
DROP TABLE IF EXISTS silver_track_artists;
DROP TABLE IF EXISTS enrichment_lookups;
DROP TABLE IF EXISTS enrichment_jobs;
DROP INDEX IF EXISTS ix_bronze_api_enrichments_track_provider;
ALTER TABLE IF EXISTS bronze_api_enrichments DROP COLUMN IF EXISTS run_id;
ALTER TABLE IF EXISTS enrichment_providers DROP COLUMN IF EXISTS cost_per_call_usd;
ALTER TABLE IF EXISTS metadata_enrichment_config DROP COLUMN IF EXISTS waterfall_mode;
DROP TABLE IF EXISTS ingest_quarantine;
