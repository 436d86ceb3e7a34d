-- 007 down: gold_harmonic_mixing_recommendations becomes again the materialised view of 003
-- (same text, its two indexes) and refresh_gold_materialized_views() refreshes it again, exactly
-- as 003 created them. Creating the materialised view computes every track's top 10 (as long as
-- the old refresh: minutes at 100k+ gold tracks). Re-runnable.

DO $$
BEGIN
    -- DROP VIEW IF EXISTS fails when the name is already the materialised view (re-run).
    IF (SELECT relkind FROM pg_class
        WHERE oid = to_regclass('gold_harmonic_mixing_recommendations')) = 'v' THEN
        DROP VIEW gold_harmonic_mixing_recommendations;
    END IF;
END;
$$;
DROP FUNCTION IF EXISTS harmonic_recommendations_for(UUID);

-- From here on, 003_gold_layer_up.sql verbatim.
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
