-- 007 harmonic recommendations on read: gold_harmonic_mixing_recommendations stops being a
-- MATERIALIZED VIEW refreshed for every gold track and becomes a plain VIEW computed for the
-- tracks a query asks about. Same name, same 13 columns (names and types), same scoring,
-- ranking and top 10 as 003. Needs 003.
--
-- Why: the refresh recomputed the top 10 of EVERY gold track (82 s at 100k tracks, unfinished
-- after 9 min at 1M) and the suggestions were stale until the next refresh. One track's
-- suggestions cost 4 compatible keys x 3 tempo bands x 2 sides = 24 ordered probes of
-- ix_gold_track_analytics_key_bpm, each stopping after 5 index entries (at most 120 rows): a
-- few ms whatever the table size, and always current after any gold upsert.
--
-- Why a function under the view (and not the plain 003 query as a view): measured at 1M gold
-- tracks, 200 random tracks, `WHERE source_track_id = $1 ORDER BY rank`:
--   plain view, same query as 003   prepared p95 1.9 ms, unprepared p95 3.5 ms (2 ms planning
--                                   per query), bitmap heap scans + sort chosen at 10k tracks,
--                                   JIT kicks in for a batch of ~100 tracks (143 vs 102 ms);
--   LANGUAGE sql function + SET     p95 2.8-3.0 ms: not inlinable (SET), re-planned per query;
--   LANGUAGE plpgsql function + SET p95 1.6-2.2 ms (unprepared 2.6 ms): plan cached per session.
-- A view cannot carry planner settings; a function can. enable_bitmapscan = off keeps the
-- probes ordered index scans with LIMIT (the planner cannot see the per-row BPM window and at
-- small sizes estimates ~2 rows per probe, so it picks bitmap heap scans that read and sort the
-- whole window); jit = off because JIT only adds compile time to these tiny probes. Both apply
-- only while the function runs. The view exposes the source columns from gold_track_analytics
-- itself, so `WHERE source_track_id = X` is a condition on gold_track_analytics.id: the planner
-- fetches that one row through pk_gold_track_analytics and calls the function once (a filter
-- on the function's own output would call it for every track).
--
-- Trade-off: reading the WHOLE view (or filtering only on recommended_track_id, which 003
-- indexed) computes every track's top 10, ~1 ms per track: fine for a demo database, not at
-- 1M. Ask for the source tracks you need.
--
-- Re-runnable. Re-running 003 after this migration stops at 003's CREATE INDEX on the old
-- materialised view (an index cannot be built on a plain view); with ON_ERROR_STOP nothing
-- changes. Run this file's down first to re-apply 003.

DO $$
BEGIN
    -- DROP MATERIALIZED VIEW IF EXISTS fails when the name is already the plain view (re-run).
    IF (SELECT relkind FROM pg_class
        WHERE oid = to_regclass('gold_harmonic_mixing_recommendations')) = 'm' THEN
        DROP MATERIALIZED VIEW gold_harmonic_mixing_recommendations;  -- with its two indexes
    END IF;
END;
$$;

-- The other two gold views stay materialised. The planner settings 003 gave this function were
-- for the harmonic probes only (they are now on harmonic_recommendations_for); CREATE OR
-- REPLACE without SET clauses removes them.
CREATE OR REPLACE FUNCTION refresh_gold_materialized_views() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    REFRESH MATERIALIZED VIEW CONCURRENTLY gold_top_tracks_by_genre;
    REFRESH MATERIALIZED VIEW CONCURRENTLY gold_artist_collaboration_network;
END;
$$;

-- One track's top 10, exactly 003's per-track query (for each compatible key x tempo band, the
-- nearest 5 BPMs on each side within a 6% window). Score in [0, 1]:
--   key   0.5 same key, 0.4 adjacent (+-1), 0.35 relative major/minor
--   bpm   up to 0.3, linear in percent distance; half/double time scaled by 0.8
--   energy up to 0.2 by closeness (0.1 when either energy is unknown)
-- No rows when the track is unknown or has no key or BPM. RETURNS TABLE drops type modifiers:
-- the view casts recommended_bpm and compatibility_score back to 003's NUMERIC(6,2)/(4,3).
CREATE OR REPLACE FUNCTION harmonic_recommendations_for(track_id UUID)
RETURNS TABLE (
    recommended_track_id        UUID,
    recommended_silver_track_id UUID,
    recommended_key             TEXT,
    recommended_bpm             NUMERIC,
    key_relation                TEXT,
    tempo_relation              TEXT,
    bpm_diff_pct                NUMERIC,
    compatibility_score         NUMERIC,
    rank                        INTEGER
)
LANGUAGE plpgsql STABLE ROWS 10 SET enable_bitmapscan = off SET jit = off AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT best.recommended_track_id,
           best.recommended_silver_track_id,
           best.recommended_key,
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
    WHERE s.id = harmonic_recommendations_for.track_id
      AND s.key IS NOT NULL AND s.bpm IS NOT NULL
    ORDER BY best.rank;
END;
$$;

CREATE OR REPLACE VIEW gold_harmonic_mixing_recommendations AS
SELECT s.id AS source_track_id,
       s.silver_track_id AS source_silver_track_id,
       r.recommended_track_id,
       r.recommended_silver_track_id,
       s.key AS source_key,
       r.recommended_key,
       s.bpm AS source_bpm,
       r.recommended_bpm::NUMERIC(6, 2) AS recommended_bpm,
       r.key_relation,
       r.tempo_relation,
       r.bpm_diff_pct,
       r.compatibility_score::NUMERIC(4, 3) AS compatibility_score,
       r.rank
FROM gold_track_analytics s
CROSS JOIN LATERAL harmonic_recommendations_for(s.id) r
WHERE s.key IS NOT NULL AND s.bpm IS NOT NULL;
