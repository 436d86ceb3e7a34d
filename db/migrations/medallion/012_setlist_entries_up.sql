-- 012 setlists as scrapers send them, and harmonic flow as a DJ counts it.
--   * playlist_entry_flags: a setlist entry that could not be read as sent (not an object,
--     unreadable position or cue time, an unusable name) or a setlist with no identified entry.
--     The entry itself stays in bronze exactly as sent; the flag names the reason, and
--     `songnodes quarantine` lists the flags beside the quarantined envelopes.
--   * silver_playlist_tracks holds every entry of a set, identified or not: `sequence` (order as
--     sent) is the key, `track_id` is NULL for an unidentified position, and each row says what
--     the entry is (entry_status, slot_role main|with for `w/` slots and repeated positions,
--     mashup and its parts, the cue time as sent next to cue_time_ms).
--   * camelot_key_distance / playlist_harmonic_flow: the harmonic flow gold stores (share of
--     compatible transitions between adjacent positions, both keyed), key_changes over the same
--     pairs, and the graded score beside it.
-- Needs 001-003. Re-runnable, no psql meta-commands.

CREATE TABLE IF NOT EXISTS playlist_entry_flags (
    id                 UUID        NOT NULL DEFAULT gen_random_uuid(),
    bronze_playlist_id UUID        NOT NULL,
    -- Index into raw_json.tracks of the bronze playlist; NULL flags the whole setlist.
    entry_index        INTEGER,
    bronze_track_id    UUID,
    position           INTEGER,
    reason             TEXT        NOT NULL,
    flagged_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_playlist_entry_flags PRIMARY KEY (id),
    CONSTRAINT fk_playlist_entry_flags_bronze_playlist_id
        FOREIGN KEY (bronze_playlist_id) REFERENCES bronze_scraped_playlists (id),
    CONSTRAINT fk_playlist_entry_flags_bronze_track_id
        FOREIGN KEY (bronze_track_id) REFERENCES bronze_scraped_tracks (id),
    CONSTRAINT uq_playlist_entry_flags_entry UNIQUE NULLS NOT DISTINCT
        (bronze_playlist_id, entry_index, reason)
);
CREATE INDEX IF NOT EXISTS ix_playlist_entry_flags_flagged_at
    ON playlist_entry_flags (flagged_at DESC);

-- Existing rows get their order from their position (they were identified rows only).
ALTER TABLE silver_playlist_tracks ADD COLUMN IF NOT EXISTS sequence INTEGER;
UPDATE silver_playlist_tracks pt SET sequence = n.seq
FROM (SELECT playlist_id, track_id, position,
             row_number() OVER (PARTITION BY playlist_id ORDER BY position, track_id) AS seq
      FROM silver_playlist_tracks) n
WHERE pt.sequence IS NULL AND n.playlist_id = pt.playlist_id AND n.track_id = pt.track_id
  AND n.position = pt.position;
ALTER TABLE silver_playlist_tracks ALTER COLUMN sequence SET NOT NULL;
ALTER TABLE silver_playlist_tracks DROP CONSTRAINT IF EXISTS pk_silver_playlist_tracks;
ALTER TABLE silver_playlist_tracks
    ADD CONSTRAINT pk_silver_playlist_tracks PRIMARY KEY (playlist_id, sequence);
ALTER TABLE silver_playlist_tracks ALTER COLUMN track_id DROP NOT NULL;
-- A row inserted without a sequence (the design document's examples insert playlist_id,
-- track_id, position only) goes after the playlist's last entry. The pipeline always sets it.
CREATE OR REPLACE FUNCTION silver_playlist_tracks_next_sequence() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    SELECT coalesce(max(sequence), 0) + 1 INTO NEW.sequence
    FROM silver_playlist_tracks WHERE playlist_id = NEW.playlist_id;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS silver_playlist_tracks_sequence ON silver_playlist_tracks;
CREATE TRIGGER silver_playlist_tracks_sequence BEFORE INSERT ON silver_playlist_tracks
    FOR EACH ROW WHEN (NEW.sequence IS NULL)
    EXECUTE FUNCTION silver_playlist_tracks_next_sequence();
-- Inline, so a re-run adds nothing (re-creating a foreign key renames its triggers).
ALTER TABLE silver_playlist_tracks ADD COLUMN IF NOT EXISTS bronze_track_id UUID
    CONSTRAINT fk_silver_playlist_tracks_bronze_track_id REFERENCES bronze_scraped_tracks (id);
ALTER TABLE silver_playlist_tracks
    ADD COLUMN IF NOT EXISTS entry_status TEXT NOT NULL DEFAULT 'identified';
ALTER TABLE silver_playlist_tracks ADD COLUMN IF NOT EXISTS slot_role TEXT NOT NULL DEFAULT 'main';
ALTER TABLE silver_playlist_tracks ADD COLUMN IF NOT EXISTS mashup BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE silver_playlist_tracks ADD COLUMN IF NOT EXISTS mashup_parts JSONB;
ALTER TABLE silver_playlist_tracks ADD COLUMN IF NOT EXISTS cue_time_raw TEXT;
ALTER TABLE silver_playlist_tracks DROP CONSTRAINT IF EXISTS ck_silver_playlist_tracks_sequence_positive;
ALTER TABLE silver_playlist_tracks
    ADD CONSTRAINT ck_silver_playlist_tracks_sequence_positive CHECK (sequence >= 1);
ALTER TABLE silver_playlist_tracks DROP CONSTRAINT IF EXISTS ck_silver_playlist_tracks_entry_status;
ALTER TABLE silver_playlist_tracks ADD CONSTRAINT ck_silver_playlist_tracks_entry_status
    CHECK (entry_status IN ('identified', 'unidentified', 'unresolved'));
ALTER TABLE silver_playlist_tracks DROP CONSTRAINT IF EXISTS ck_silver_playlist_tracks_identified_track;
-- An identified entry has its silver track; an unidentified or unresolved one has none.
ALTER TABLE silver_playlist_tracks ADD CONSTRAINT ck_silver_playlist_tracks_identified_track
    CHECK ((entry_status = 'identified') = (track_id IS NOT NULL));
ALTER TABLE silver_playlist_tracks DROP CONSTRAINT IF EXISTS ck_silver_playlist_tracks_slot_role;
ALTER TABLE silver_playlist_tracks ADD CONSTRAINT ck_silver_playlist_tracks_slot_role
    CHECK (slot_role IN ('main', 'with'));

ALTER TABLE gold_playlist_analytics ADD COLUMN IF NOT EXISTS harmonic_transitions INTEGER;
ALTER TABLE gold_playlist_analytics ADD COLUMN IF NOT EXISTS compatible_transitions INTEGER;
ALTER TABLE gold_playlist_analytics ADD COLUMN IF NOT EXISTS harmonic_flow_graded NUMERIC(3, 2);
ALTER TABLE gold_playlist_analytics
    DROP CONSTRAINT IF EXISTS ck_gold_playlist_analytics_harmonic_graded_range;
ALTER TABLE gold_playlist_analytics ADD CONSTRAINT ck_gold_playlist_analytics_harmonic_graded_range
    CHECK (harmonic_flow_graded IS NULL OR harmonic_flow_graded BETWEEN 0 AND 1);

-- Steps on the Camelot wheel between two keys: 0 same key, 1 adjacent (+/-1, wrapping 12 <-> 1)
-- or relative major/minor, one more per further step; NULL unless both are Camelot codes
-- (1A-12B, as silver stores keys). The same rule as pipeline.camelot.key_distance.
CREATE OR REPLACE FUNCTION camelot_key_distance(a TEXT, b TEXT) RETURNS INTEGER
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE WHEN a ~ '^(1[0-2]|[1-9])[AB]$' AND b ~ '^(1[0-2]|[1-9])[AB]$' THEN
        least(abs(left(a, -1)::int - left(b, -1)::int),
              12 - abs(left(a, -1)::int - left(b, -1)::int))
        + CASE WHEN right(a, 1) = right(b, 1) THEN 0 ELSE 1 END
    END
$$;

-- Harmonic flow of one silver playlist. A transition joins the main entries of two adjacent
-- positions (p and p + 1; a gap in the numbering is a position we know nothing about); it counts
-- only when both entries are identified tracks with a Camelot key, so an unidentified or keyless
-- track breaks the chain. `w/` slots and later entries at a repeated position (slot_role 'with')
-- are played over their main entry: they neither make nor break a transition.
--   transitions: pairs counted; compatible: pairs at most one step apart (same key, +/-1,
--   relative major/minor); key_changes: counted pairs whose keys differ;
--   flow = compatible / transitions (NULL without a counted pair);
--   graded = mean of 1.0 for a compatible pair, 0.2 less per further step (floor 0).
CREATE OR REPLACE FUNCTION playlist_harmonic_flow(p_playlist_id UUID)
RETURNS TABLE (transitions INTEGER, compatible INTEGER, key_changes INTEGER,
               flow NUMERIC(3, 2), graded NUMERIC(3, 2))
LANGUAGE sql STABLE AS $$
    WITH slots AS (
        SELECT DISTINCT ON (pt.position) pt.position, t.key
        FROM silver_playlist_tracks pt
        LEFT JOIN silver_enriched_tracks t ON t.id = pt.track_id
        WHERE pt.playlist_id = p_playlist_id AND pt.slot_role = 'main'
        ORDER BY pt.position, pt.sequence
    ), pairs AS (
        SELECT a.key AS ka, b.key AS kb, camelot_key_distance(a.key, b.key) AS d
        FROM slots a JOIN slots b ON b.position = a.position + 1
    )
    SELECT count(*)::int,
           (count(*) FILTER (WHERE d <= 1))::int,
           (count(*) FILTER (WHERE ka <> kb))::int,
           round((count(*) FILTER (WHERE d <= 1))::numeric / nullif(count(*), 0), 2),
           round(avg(CASE WHEN d <= 1 THEN 1.0 ELSE greatest(0.0, 1.0 - 0.2 * (d - 1)) END), 2)
    FROM pairs WHERE d IS NOT NULL
$$;
