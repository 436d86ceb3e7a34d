-- 001 down: drop the bronze layer. DROP TABLE fires no row/TRUNCATE trigger, so the
-- append-only guards do not get in the way.
DROP TABLE IF EXISTS bronze_api_enrichments;
DROP TABLE IF EXISTS bronze_scraped_tracks;
DROP TABLE IF EXISTS bronze_scraped_artists;
DROP TABLE IF EXISTS bronze_scraped_playlists;
DROP FUNCTION IF EXISTS bronze_reject_mutation();
