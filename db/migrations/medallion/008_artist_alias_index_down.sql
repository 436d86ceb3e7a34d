-- 008 down: drop the artist alias index.
DROP INDEX IF EXISTS ix_silver_enriched_artists_aliases;
