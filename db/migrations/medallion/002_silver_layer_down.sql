-- 002 down: drop the silver layer and its helper functions (functions that take the table's
-- row type go first, or DROP TABLE would need CASCADE).
DROP FUNCTION IF EXISTS calculate_enrichment_completeness(silver_enriched_tracks);
DROP TABLE IF EXISTS silver_playlist_tracks;
DROP TABLE IF EXISTS silver_enriched_playlists;
DROP TABLE IF EXISTS silver_enriched_artists;
DROP TABLE IF EXISTS silver_enriched_tracks;
DROP FUNCTION IF EXISTS silver_tracks_before_write();
DROP FUNCTION IF EXISTS update_updated_at_column();
DROP FUNCTION IF EXISTS calculate_legacy_quality_score(JSONB);
DROP FUNCTION IF EXISTS calculate_compatible_keys(TEXT);
DROP FUNCTION IF EXISTS to_camelot(TEXT);
