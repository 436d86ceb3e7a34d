-- 019 up: gold artist aggregates are debounced (issue 17).
-- A merge or setlist marks the artists whose aggregates changed; one debounced task
-- (tasks.gold.update_artists) claims the marks and re-aggregates each artist once, however many
-- setlists named it meanwhile. Re-aggregating a popular artist per setlist read all its
-- appearances every time: the cost grew with the square of the catalogue's repeats.
-- The marks live in PostgreSQL so a lost message is re-derived: the sweeper re-sends the task
-- while marks older than its age remain.
CREATE TABLE IF NOT EXISTS gold_artist_refresh_queue (
    artist_id UUID PRIMARY KEY REFERENCES silver_enriched_artists (id) ON DELETE CASCADE,
    marked_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS ix_gold_artist_refresh_queue_marked_at
    ON gold_artist_refresh_queue (marked_at);
