-- 005 down: drop lineage and replay support.
DROP FUNCTION IF EXISTS update_field_provenance(UUID, TEXT, UUID);
DROP FUNCTION IF EXISTS log_transformation(UUID, TEXT, TEXT, TEXT, JSONB, JSONB, BOOLEAN, NUMERIC,
    UUID, UUID, TEXT, INTEGER, TEXT, INTEGER, NUMERIC);
DROP FUNCTION IF EXISTS complete_pipeline_run(UUID, TEXT, JSONB);
DROP FUNCTION IF EXISTS start_pipeline_run(TEXT, TEXT, TEXT, TEXT[], TIMESTAMPTZ, TIMESTAMPTZ);
DROP TABLE IF EXISTS data_quality_metrics;
DROP TABLE IF EXISTS pipeline_replay_queue;
DROP TABLE IF EXISTS field_provenance;
DROP TABLE IF EXISTS enrichment_transformations;
DROP TABLE IF EXISTS enrichment_pipeline_runs;
