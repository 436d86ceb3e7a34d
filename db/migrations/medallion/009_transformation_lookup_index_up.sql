-- 009 transformation lookup index: the pipeline reads a job's field outcomes by (bronze_id,
-- run_id) at every fan-in, every lookup and every merge. With one index per column PostgreSQL
-- ANDed two bitmaps, and a replay run covering thousands of bronze rows made the run_id side
-- scan every row of that run for each probe: ~200 ms per batch of 100 at 4,000 tracks, growing
-- with the run (bench/replay slowed from 41 to 22 tracks/s between 2k and 10k tracks). One
-- composite index answers each probe directly (~11 ms per batch) and serves bronze_id-only
-- queries too, so it replaces 005's bronze_id index. Needs 005. Re-runnable.
CREATE INDEX IF NOT EXISTS ix_enrichment_transformations_bronze_run
    ON enrichment_transformations (bronze_id, run_id) WHERE bronze_id IS NOT NULL;
DROP INDEX IF EXISTS ix_enrichment_transformations_bronze_id;
