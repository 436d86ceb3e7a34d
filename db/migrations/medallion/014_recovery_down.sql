-- 014 down: drop what 014 added (006's tables are as they were before).
DROP TABLE IF EXISTS maintenance_marks;
ALTER TABLE enrichment_lookups DROP COLUMN IF EXISTS leased_until;
DROP TABLE IF EXISTS failed_work;
