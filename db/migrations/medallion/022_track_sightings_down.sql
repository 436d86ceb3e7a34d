-- 022 down: the sightings go back into the track's additional_bronze_ids array (002's column),
-- oldest link first, and the table goes.
ALTER TABLE silver_enriched_tracks
    ADD COLUMN IF NOT EXISTS additional_bronze_ids UUID[] NOT NULL DEFAULT '{}';

DO $$
BEGIN
    IF to_regclass('silver_track_sightings') IS NOT NULL THEN
        UPDATE silver_enriched_tracks t
        SET additional_bronze_ids = ARRAY(
            SELECT x FROM unnest(t.additional_bronze_ids || s.ids) WITH ORDINALITY AS u(x, n)
            GROUP BY x ORDER BY min(n))
        FROM (SELECT silver_id, array_agg(bronze_id ORDER BY linked_at, bronze_id) AS ids
              FROM silver_track_sightings GROUP BY silver_id) s
        WHERE s.silver_id = t.id;
    END IF;
END $$;
DROP TABLE IF EXISTS silver_track_sightings;
