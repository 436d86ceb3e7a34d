-- 009 down: back to 005's bronze_id index.
CREATE INDEX IF NOT EXISTS ix_enrichment_transformations_bronze_id
    ON enrichment_transformations (bronze_id) WHERE bronze_id IS NOT NULL;
DROP INDEX IF EXISTS ix_enrichment_transformations_bronze_run;
