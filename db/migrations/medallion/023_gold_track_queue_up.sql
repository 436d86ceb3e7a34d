-- 023 up: a track's gold appearances are debounced like its artists' aggregates (019, issue 17).
-- A setlist's merge marks its tracks here; one debounced task (tasks.gold.update_owed_tracks)
-- claims the marks and re-aggregates each track once (its playlist_appearances and
-- last_played_at read every appearance), however many setlists named it meanwhile. Before, each
-- setlist's merge re-aggregated all its tracks at once: a hit is in most setlists, so the work
-- grew with the square of the repeats (bench/sightings' 20k re-scrape: 24 ms per setlist, gold
-- finishing 26 s after the last merge). A merge that changes a track's values still upserts its
-- gold row at once (tasks.gold.update_tracks); only the appearance counts wait.
-- The marks live in PostgreSQL so a lost message is re-derived: the sweeper re-sends the task
-- while marks older than its age remain. Needs 002. Re-runnable.
CREATE TABLE IF NOT EXISTS gold_track_refresh_queue (
    track_id  UUID PRIMARY KEY REFERENCES silver_enriched_tracks (id) ON DELETE CASCADE,
    marked_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS ix_gold_track_refresh_queue_marked_at
    ON gold_track_refresh_queue (marked_at);
