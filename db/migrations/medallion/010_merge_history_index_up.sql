-- 010 merge history index: a replay's summary (and `songnodes trace`) looks up, for each field a
-- run merged, the previous merge of the same silver track and field. With only 005's single-column
-- indexes PostgreSQL ANDed the silver_id bitmap with the metadata_field one, which matches every
-- merge of that field in the table: at 10k tracks one replay run's summary took 77 s (3,180
-- probes at 24 ms), and a 10k replay spent most of its database time there. This index answers
-- each probe with one ordered index read. Needs 005. Re-runnable.
CREATE INDEX IF NOT EXISTS ix_enrichment_transformations_merge_history
    ON enrichment_transformations (silver_id, metadata_field, created_at DESC)
    WHERE transformation_type = 'merge';
