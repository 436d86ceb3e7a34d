-- 022 up: the bronze rows a silver track was sighted in, besides its first, as rows of their
-- own (issue 17). They were an array on the track (additional_bronze_ids, 002): every sighting
-- of a known track rewrote the track's row with an array one id longer, so a hit of a Zipf
-- catalogue (thousands of sightings) was rewritten, TOAST and all, by nearly every merge batch,
-- and each batch waited for the row lock the one before held (pg_stat_statements: 28 ms mean,
-- the costliest statement of bench/sightings' first pass). A sighting is now one insert here:
-- no lock on the track beyond the foreign key's KEY SHARE, nothing rewritten.
--   * (bronze_id, silver_id) is the key, as the array allowed a bronze row on several tracks;
--     it also serves "which tracks came from these bronze rows" (replay, trace).
--   * linked_at: when the sighting was linked. The track's updated_at is no longer touched by
--     a sighting; the gold sweeper (pipeline.maintenance.stale_gold) reads both.
-- The array's contents move here and the column goes. Needs 002. Re-runnable.
CREATE TABLE IF NOT EXISTS silver_track_sightings (
    bronze_id  UUID        NOT NULL,
    silver_id  UUID        NOT NULL REFERENCES silver_enriched_tracks (id) ON DELETE CASCADE,
    linked_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (bronze_id, silver_id)
);
CREATE INDEX IF NOT EXISTS ix_silver_track_sightings_silver_id
    ON silver_track_sightings (silver_id);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns
               WHERE table_name = 'silver_enriched_tracks'
                 AND column_name = 'additional_bronze_ids'
                 AND table_schema = current_schema()) THEN
        INSERT INTO silver_track_sightings (bronze_id, silver_id, linked_at)
        SELECT DISTINCT b, t.id, t.updated_at
        FROM silver_enriched_tracks t, unnest(t.additional_bronze_ids) AS b
        ON CONFLICT DO NOTHING;
        ALTER TABLE silver_enriched_tracks DROP COLUMN additional_bronze_ids;
    END IF;
END $$;
