-- 023 down: setlist merges re-aggregate their tracks' gold rows at once again (the marks go;
-- run the sweeper's stale-gold pass or a replay to settle any still owed).
DROP TABLE IF EXISTS gold_track_refresh_queue;
