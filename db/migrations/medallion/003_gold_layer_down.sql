-- 003 down: drop the gold layer (views first: they read the tables).
DROP FUNCTION IF EXISTS refresh_gold_materialized_views();
DROP MATERIALIZED VIEW IF EXISTS gold_harmonic_mixing_recommendations;
DROP MATERIALIZED VIEW IF EXISTS gold_artist_collaboration_network;
DROP MATERIALIZED VIEW IF EXISTS gold_top_tracks_by_genre;
DROP TABLE IF EXISTS gold_playlist_analytics;
DROP TABLE IF EXISTS gold_artist_analytics;
DROP TABLE IF EXISTS gold_track_analytics;
