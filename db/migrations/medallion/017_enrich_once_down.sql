-- 017 down: back to the previous schema (checks, flights and reuse marks go; values stay).
DROP FUNCTION IF EXISTS field_check_is_fresh(TIMESTAMPTZ, TEXT, JSONB, TIMESTAMPTZ);
DROP FUNCTION IF EXISTS field_config_hash(JSONB);
DROP TABLE IF EXISTS enrichment_flights;
DROP TABLE IF EXISTS silver_field_checks;
DROP INDEX IF EXISTS ix_enrichment_jobs_waits_for;
ALTER TABLE enrichment_jobs DROP COLUMN IF EXISTS waits_for;
ALTER TABLE enrichment_jobs DROP COLUMN IF EXISTS reuse_silver_id;
ALTER TABLE enrichment_jobs DROP COLUMN IF EXISTS reused_fields;
ALTER TABLE metadata_enrichment_config DROP COLUMN IF EXISTS fresh_for;
