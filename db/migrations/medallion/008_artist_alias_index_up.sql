-- 008 artist alias index: every merge resolves each credited artist by normalised name OR alias
-- (pipeline.merge.upsert_artist: normalized_name = $1 OR aliases @> ARRAY[$1]). Without an index
-- on aliases that OR read the whole silver_enriched_artists table once per credited artist:
-- the largest single cost of a merge (py-spy, bench/replay). A GIN index lets PostgreSQL answer
-- it with a BitmapOr of two index probes. Needs 002. Re-runnable.
CREATE INDEX IF NOT EXISTS ix_silver_enriched_artists_aliases
    ON silver_enriched_artists USING GIN (aliases);
