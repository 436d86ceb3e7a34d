-- 019 down: artists are aggregated per merge again (the marks go; gold rows stay).
DROP TABLE IF EXISTS gold_artist_refresh_queue;
