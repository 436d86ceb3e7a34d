-- 004 down: drop the waterfall configuration.
DROP FUNCTION IF EXISTS get_provider_priority(TEXT, TEXT[]);
DROP VIEW IF EXISTS enrichment_waterfall_summary;
DROP TABLE IF EXISTS provider_performance_history;
DROP TABLE IF EXISTS metadata_enrichment_config;
DROP TABLE IF EXISTS enrichment_providers;
DROP FUNCTION IF EXISTS waterfall_touch_updated_at();
