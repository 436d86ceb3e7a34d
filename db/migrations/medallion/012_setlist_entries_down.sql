-- 012 down: back to 010's schema. Silver membership keeps identified rows only (unidentified
-- and unresolved positions, and a second row of the same track at the same position, go: 010's
-- key cannot hold them); the flags table goes (the entries themselves stay in bronze).
DROP FUNCTION IF EXISTS playlist_harmonic_flow(UUID);
DROP FUNCTION IF EXISTS camelot_key_distance(TEXT, TEXT);

ALTER TABLE gold_playlist_analytics
    DROP CONSTRAINT IF EXISTS ck_gold_playlist_analytics_harmonic_graded_range;
ALTER TABLE gold_playlist_analytics DROP COLUMN IF EXISTS harmonic_flow_graded;
ALTER TABLE gold_playlist_analytics DROP COLUMN IF EXISTS compatible_transitions;
ALTER TABLE gold_playlist_analytics DROP COLUMN IF EXISTS harmonic_transitions;

DROP TRIGGER IF EXISTS silver_playlist_tracks_sequence ON silver_playlist_tracks;
DROP FUNCTION IF EXISTS silver_playlist_tracks_next_sequence();
DELETE FROM silver_playlist_tracks WHERE track_id IS NULL;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns
               WHERE table_name = 'silver_playlist_tracks' AND column_name = 'sequence') THEN
        DELETE FROM silver_playlist_tracks a USING silver_playlist_tracks b
        WHERE a.playlist_id = b.playlist_id AND a.track_id = b.track_id
          AND a.position = b.position AND a.sequence > b.sequence;
    END IF;
END $$;
ALTER TABLE silver_playlist_tracks DROP CONSTRAINT IF EXISTS ck_silver_playlist_tracks_slot_role;
ALTER TABLE silver_playlist_tracks DROP CONSTRAINT IF EXISTS ck_silver_playlist_tracks_identified_track;
ALTER TABLE silver_playlist_tracks DROP CONSTRAINT IF EXISTS ck_silver_playlist_tracks_entry_status;
ALTER TABLE silver_playlist_tracks DROP CONSTRAINT IF EXISTS ck_silver_playlist_tracks_sequence_positive;
ALTER TABLE silver_playlist_tracks
    DROP CONSTRAINT IF EXISTS fk_silver_playlist_tracks_bronze_track_id;
ALTER TABLE silver_playlist_tracks DROP COLUMN IF EXISTS cue_time_raw;
ALTER TABLE silver_playlist_tracks DROP COLUMN IF EXISTS mashup_parts;
ALTER TABLE silver_playlist_tracks DROP COLUMN IF EXISTS mashup;
ALTER TABLE silver_playlist_tracks DROP COLUMN IF EXISTS slot_role;
ALTER TABLE silver_playlist_tracks DROP COLUMN IF EXISTS entry_status;
ALTER TABLE silver_playlist_tracks DROP COLUMN IF EXISTS bronze_track_id;
ALTER TABLE silver_playlist_tracks DROP CONSTRAINT IF EXISTS pk_silver_playlist_tracks;
ALTER TABLE silver_playlist_tracks DROP COLUMN IF EXISTS sequence;
ALTER TABLE silver_playlist_tracks ALTER COLUMN track_id SET NOT NULL;
ALTER TABLE silver_playlist_tracks
    ADD CONSTRAINT pk_silver_playlist_tracks PRIMARY KEY (playlist_id, track_id, position);

DROP TABLE IF EXISTS playlist_entry_flags;
