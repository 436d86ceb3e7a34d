-- 003 gold layer: denormalised analytics, one row per silver entity, plus materialised views
-- that refresh CONCURRENTLY (each has a UNIQUE index) so readers are never blocked.

CREATE TABLE IF NOT EXISTS gold_track_analytics (
    id                      UUID          NOT NULL DEFAULT gen_random_uuid(),
    silver_track_id         UUID          NOT NULL,
    -- Nullable: the seed's gold insert only writes full_track_name.
    artist_name             TEXT,
    track_title             TEXT,
    full_track_name         TEXT          NOT NULL,
    spotify_id              TEXT,
    isrc                    TEXT,
    bpm                     NUMERIC(6, 2),
    key                     TEXT,
    genre_primary           TEXT,
    genres                  TEXT[],
    energy                  NUMERIC(3, 2),
    valence                 NUMERIC(3, 2),
    danceability            NUMERIC(3, 2),
    play_count              INTEGER       NOT NULL DEFAULT 0,
    playlist_appearances    INTEGER       NOT NULL DEFAULT 0,
    last_played_at          TIMESTAMPTZ,
    first_seen_at           TIMESTAMPTZ,
    compatible_keys         TEXT[],
    key_family              TEXT,
    data_quality_score      NUMERIC(3, 2),
    enrichment_completeness NUMERIC(3, 2),
    created_at              TIMESTAMPTZ   NOT NULL DEFAULT now(),
    updated_at              TIMESTAMPTZ   NOT NULL DEFAULT now(),
    last_analyzed_at        TIMESTAMPTZ   NOT NULL DEFAULT now(),
    CONSTRAINT pk_gold_track_analytics PRIMARY KEY (id),
    CONSTRAINT fk_gold_track_analytics_silver_track_id
        FOREIGN KEY (silver_track_id) REFERENCES silver_enriched_tracks (id) ON DELETE CASCADE,
    -- Incremental gold upserts ON CONFLICT (silver_track_id): needs this key.
    CONSTRAINT uq_gold_track_analytics_silver_track_id UNIQUE (silver_track_id),
    CONSTRAINT ck_gold_track_analytics_bpm_range CHECK (bpm IS NULL OR bpm BETWEEN 20 AND 300),
    CONSTRAINT ck_gold_track_analytics_key_camelot
        CHECK (key IS NULL OR key ~ '^(1[0-2]|[1-9])[AB]$'),
    CONSTRAINT ck_gold_track_analytics_energy_range CHECK (energy IS NULL OR energy BETWEEN 0 AND 1),
    CONSTRAINT ck_gold_track_analytics_quality_range
        CHECK (data_quality_score IS NULL OR data_quality_score BETWEEN 0 AND 1),
    CONSTRAINT ck_gold_track_analytics_completeness_range
        CHECK (enrichment_completeness IS NULL OR enrichment_completeness BETWEEN 0 AND 1),
    CONSTRAINT ck_gold_track_analytics_counts_positive
        CHECK (play_count >= 0 AND playlist_appearances >= 0)
);
-- The harmonic view probes (key, bpm range) once per compatible key and tempo band.
CREATE INDEX IF NOT EXISTS ix_gold_track_analytics_key_bpm ON gold_track_analytics (key, bpm);
CREATE INDEX IF NOT EXISTS ix_gold_track_analytics_artist_name ON gold_track_analytics (artist_name);
CREATE INDEX IF NOT EXISTS ix_gold_track_analytics_genre_primary
    ON gold_track_analytics (genre_primary) WHERE genre_primary IS NOT NULL;
CREATE INDEX IF NOT EXISTS ix_gold_track_analytics_genres
    ON gold_track_analytics USING gin (genres);
CREATE INDEX IF NOT EXISTS ix_gold_track_analytics_playlist_appearances
    ON gold_track_analytics (playlist_appearances DESC);

CREATE TABLE IF NOT EXISTS gold_artist_analytics (
    id                    UUID        NOT NULL DEFAULT gen_random_uuid(),
    silver_artist_id      UUID        NOT NULL,
    artist_name           TEXT        NOT NULL,
    aliases               TEXT[],
    primary_genre         TEXT,
    genres                TEXT[],
    spotify_id            TEXT,
    musicbrainz_id        TEXT,
    beatport_id           TEXT,
    total_tracks          INTEGER     NOT NULL DEFAULT 0,
    total_playlists       INTEGER     NOT NULL DEFAULT 0,
    total_appearances     INTEGER     NOT NULL DEFAULT 0,
    collaboration_count   INTEGER     NOT NULL DEFAULT 0,
    avg_bpm               NUMERIC(6, 2),
    avg_energy            NUMERIC(3, 2),
    avg_danceability      NUMERIC(3, 2),
    most_common_key       TEXT,
    popularity_score      NUMERIC(3, 2),
    trending_score        NUMERIC(3, 2),
    first_appearance_date DATE,
    last_appearance_date  DATE,
    most_active_year      INTEGER,
    data_quality_score    NUMERIC(3, 2),
    created_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_analyzed_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_gold_artist_analytics PRIMARY KEY (id),
    CONSTRAINT fk_gold_artist_analytics_silver_artist_id
        FOREIGN KEY (silver_artist_id) REFERENCES silver_enriched_artists (id) ON DELETE CASCADE,
    CONSTRAINT uq_gold_artist_analytics_silver_artist_id UNIQUE (silver_artist_id),
    CONSTRAINT ck_gold_artist_analytics_quality_range
        CHECK (data_quality_score IS NULL OR data_quality_score BETWEEN 0 AND 1),
    CONSTRAINT ck_gold_artist_analytics_popularity_range
        CHECK (popularity_score IS NULL OR popularity_score BETWEEN 0 AND 1),
    CONSTRAINT ck_gold_artist_analytics_trending_range
        CHECK (trending_score IS NULL OR trending_score BETWEEN 0 AND 1)
);
CREATE INDEX IF NOT EXISTS ix_gold_artist_analytics_artist_name
    ON gold_artist_analytics (artist_name);

CREATE TABLE IF NOT EXISTS gold_playlist_analytics (
    id                        UUID        NOT NULL DEFAULT gen_random_uuid(),
    silver_playlist_id        UUID        NOT NULL,
    playlist_name             TEXT        NOT NULL,
    artist_name               TEXT,
    event_name                TEXT,
    event_date                DATE,
    event_location            TEXT,
    track_count               INTEGER     NOT NULL DEFAULT 0,
    total_duration_ms         BIGINT,
    avg_bpm                   NUMERIC(6, 2),
    avg_energy                NUMERIC(3, 2),
    genre_distribution        JSONB,
    primary_genre             TEXT,
    key_changes               INTEGER,
    harmonic_flow_score       NUMERIC(3, 2),
    energy_curve              JSONB,
    featured_artists          TEXT[],
    collaboration_count       INTEGER     NOT NULL DEFAULT 0,
    data_quality_score        NUMERIC(3, 2),
    track_identification_rate NUMERIC(3, 2),
    created_at                TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at                TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_analyzed_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_gold_playlist_analytics PRIMARY KEY (id),
    CONSTRAINT fk_gold_playlist_analytics_silver_playlist_id
        FOREIGN KEY (silver_playlist_id) REFERENCES silver_enriched_playlists (id) ON DELETE CASCADE,
    CONSTRAINT uq_gold_playlist_analytics_silver_playlist_id UNIQUE (silver_playlist_id),
    CONSTRAINT ck_gold_playlist_analytics_quality_range
        CHECK (data_quality_score IS NULL OR data_quality_score BETWEEN 0 AND 1),
    CONSTRAINT ck_gold_playlist_analytics_harmonic_flow_range
        CHECK (harmonic_flow_score IS NULL OR harmonic_flow_score BETWEEN 0 AND 1),
    CONSTRAINT ck_gold_playlist_analytics_identification_range
        CHECK (track_identification_rate IS NULL OR track_identification_rate BETWEEN 0 AND 1)
);
CREATE INDEX IF NOT EXISTS ix_gold_playlist_analytics_event_date
    ON gold_playlist_analytics (event_date) WHERE event_date IS NOT NULL;

DROP TRIGGER IF EXISTS gold_track_analytics_updated_at ON gold_track_analytics;
CREATE TRIGGER gold_track_analytics_updated_at BEFORE UPDATE
    ON gold_track_analytics FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();
DROP TRIGGER IF EXISTS gold_artist_analytics_updated_at ON gold_artist_analytics;
CREATE TRIGGER gold_artist_analytics_updated_at BEFORE UPDATE
    ON gold_artist_analytics FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();
DROP TRIGGER IF EXISTS gold_playlist_analytics_updated_at ON gold_playlist_analytics;
CREATE TRIGGER gold_playlist_analytics_updated_at BEFORE UPDATE
    ON gold_playlist_analytics FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

-- Top 100 tracks per primary genre by appearances, then quality.
CREATE MATERIALIZED VIEW IF NOT EXISTS gold_top_tracks_by_genre AS
SELECT ranked.genre, ranked.rank, ranked.track_id, ranked.silver_track_id,
       ranked.full_track_name, ranked.artist_name, ranked.bpm, ranked.key,
       ranked.playlist_appearances, ranked.data_quality_score
FROM (
    SELECT g.genre_primary AS genre,
           ROW_NUMBER() OVER (PARTITION BY g.genre_primary
                              ORDER BY g.playlist_appearances DESC,
                                       g.data_quality_score DESC NULLS LAST, g.id) AS rank,
           g.id AS track_id, g.silver_track_id, g.full_track_name, g.artist_name, g.bpm, g.key,
           g.playlist_appearances, g.data_quality_score
    FROM gold_track_analytics g
    WHERE g.genre_primary IS NOT NULL
      AND coalesce(g.data_quality_score, 0) >= 0.7
) ranked
WHERE ranked.rank <= 100;
CREATE UNIQUE INDEX IF NOT EXISTS uq_gold_top_tracks_by_genre_genre_rank
    ON gold_top_tracks_by_genre (genre, rank);

-- Artists who share a playlist (headliner or featured). Pairs come from each playlist's own
-- artist list (k^2 per playlist, k small), not from a cross join of every artist pair.
CREATE MATERIALIZED VIEW IF NOT EXISTS gold_artist_collaboration_network AS
WITH playlist_artists AS (
    SELECT DISTINCT p.id AS playlist_id, p.event_date, btrim(a.name) AS artist
    FROM gold_playlist_analytics p
    CROSS JOIN LATERAL unnest(array_prepend(p.artist_name, coalesce(p.featured_artists, '{}')))
        AS a(name)
    WHERE coalesce(btrim(a.name), '') <> ''
)
SELECT a1.artist AS artist_1,
       a2.artist AS artist_2,
       COUNT(*)::INTEGER AS shared_playlists,
       MIN(a1.event_date) AS first_collaboration_date,
       MAX(a1.event_date) AS last_collaboration_date
FROM playlist_artists a1
JOIN playlist_artists a2 ON a2.playlist_id = a1.playlist_id AND a1.artist < a2.artist
GROUP BY a1.artist, a2.artist;
CREATE UNIQUE INDEX IF NOT EXISTS uq_gold_artist_collaboration_network_pair
    ON gold_artist_collaboration_network (artist_1, artist_2);
CREATE INDEX IF NOT EXISTS ix_gold_artist_collaboration_network_artist_2
    ON gold_artist_collaboration_network (artist_2);

-- Harmonic mixing: for each track, probe ix_gold_track_analytics_key_bpm once per compatible
-- key x tempo band (same, double, half time), nearest BPMs first on each side (5 + 5), within a
-- 6% window. Cost is O(n * 4 keys * 3 bands * 10), not O(n^2). Score in [0, 1]:
--   key   0.5 same key, 0.4 adjacent (+-1), 0.35 relative major/minor
--   bpm   up to 0.3, linear in percent distance; half/double time scaled by 0.8
--   energy up to 0.2 by closeness (0.1 when either energy is unknown)
-- The best 10 per track are kept.
CREATE MATERIALIZED VIEW IF NOT EXISTS gold_harmonic_mixing_recommendations AS
SELECT s.id AS source_track_id,
       s.silver_track_id AS source_silver_track_id,
       best.recommended_track_id,
       best.recommended_silver_track_id,
       s.key AS source_key,
       best.recommended_key,
       s.bpm AS source_bpm,
       best.recommended_bpm,
       best.key_relation,
       best.tempo_relation,
       best.bpm_diff_pct,
       best.compatibility_score,
       best.rank
FROM gold_track_analytics s
CROSS JOIN LATERAL (
    SELECT c.*, ROW_NUMBER() OVER (ORDER BY c.compatibility_score DESC, c.bpm_diff_pct,
                                            c.recommended_track_id)::INTEGER AS rank
    FROM (
        SELECT cand.id AS recommended_track_id,
               cand.silver_track_id AS recommended_silver_track_id,
               cand.key AS recommended_key,
               cand.bpm AS recommended_bpm,
               CASE ck.ord WHEN 1 THEN 'same' WHEN 4 THEN 'relative' ELSE 'adjacent' END
                   AS key_relation,
               band.relation AS tempo_relation,
               round(abs(cand.bpm - s.bpm * band.factor) / (s.bpm * band.factor) * 100, 2)
                   AS bpm_diff_pct,
               round(
                   CASE ck.ord WHEN 1 THEN 0.5 WHEN 4 THEN 0.35 ELSE 0.4 END
                 + 0.3 * band.weight * greatest(0, 1 - abs(cand.bpm - s.bpm * band.factor)
                                                     / (s.bpm * band.factor) / 0.06)
                 + CASE WHEN s.energy IS NULL OR cand.energy IS NULL THEN 0.1
                        ELSE 0.2 * greatest(0, 1 - abs(s.energy - cand.energy)) END
               , 3)::NUMERIC(4, 3) AS compatibility_score
        FROM unnest(calculate_compatible_keys(s.key)) WITH ORDINALITY AS ck(key, ord)
        CROSS JOIN (VALUES (1.0, 1.0, 'same'), (2.0, 0.8, 'double'), (0.5, 0.8, 'half'))
            AS band(factor, weight, relation)
        CROSS JOIN LATERAL (
            (SELECT t.id, t.silver_track_id, t.key, t.bpm, t.energy
             FROM gold_track_analytics t
             WHERE t.key = ck.key AND t.bpm >= s.bpm * band.factor
               AND t.bpm <= s.bpm * band.factor * 1.06 AND t.id <> s.id
             ORDER BY t.bpm ASC LIMIT 5)
            UNION ALL
            (SELECT t.id, t.silver_track_id, t.key, t.bpm, t.energy
             FROM gold_track_analytics t
             WHERE t.key = ck.key AND t.bpm < s.bpm * band.factor
               AND t.bpm >= s.bpm * band.factor * 0.94 AND t.id <> s.id
             ORDER BY t.bpm DESC LIMIT 5)
        ) cand
    ) c
    ORDER BY c.compatibility_score DESC, c.bpm_diff_pct, c.recommended_track_id
    LIMIT 10
) best
WHERE s.key IS NOT NULL AND s.bpm IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS uq_gold_harmonic_mixing_recommendations_source_rank
    ON gold_harmonic_mixing_recommendations (source_track_id, rank);
CREATE INDEX IF NOT EXISTS ix_gold_harmonic_mixing_recommendations_recommended
    ON gold_harmonic_mixing_recommendations (recommended_track_id);

-- The planner cannot see the per-row BPM window, guesses ~4 rows per probe and picks bitmap
-- heap scans + sort, which read ~40 heap pages per probe (measured 4x slower than ordered index
-- scans with LIMIT). JIT only adds compile time to these many tiny probes. Both settings apply
-- for the duration of this function only.
CREATE OR REPLACE FUNCTION refresh_gold_materialized_views() RETURNS void
LANGUAGE plpgsql SET enable_bitmapscan = off SET jit = off AS $$
BEGIN
    REFRESH MATERIALIZED VIEW CONCURRENTLY gold_top_tracks_by_genre;
    REFRESH MATERIALIZED VIEW CONCURRENTLY gold_artist_collaboration_network;
    REFRESH MATERIALIZED VIEW CONCURRENTLY gold_harmonic_mixing_recommendations;
END;
$$;
