-- 010 down: drop the merge history index (005's single-column indexes remain).
DROP INDEX IF EXISTS ix_enrichment_transformations_merge_history;
