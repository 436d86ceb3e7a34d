-- 017 enrich each track once (issue 17): identity before fan-out, fresh values reused, one
-- lookup for many sightings.
--   * metadata_enrichment_config.fresh_for: how long a field's answer stays fresh (NULL: for
--     ever). Snapshotted with the rest of the row by start_pipeline_run (to_jsonb(c)).
--   * silver_field_checks: per silver track and field, when (and in which run, under which
--     configuration of that field) the providers were last asked. A field is fresh while
--     field_check_is_fresh() says so; a field asked and not found is fresh too (a negative
--     answer is kept for the same lifetime).
--   * enrichment_jobs.reused_fields / reuse_silver_id: a sighting of a known track looks up only
--     stale fields; the others are reused from the silver track. waits_for: a sighting of a new
--     track whose lookups another job (the leader) is already making waits for it.
--   * enrichment_flights: the one leader per identity key while its lookups run.
-- Needs 002, 004-006. Re-runnable.
ALTER TABLE metadata_enrichment_config ADD COLUMN IF NOT EXISTS fresh_for INTERVAL;

ALTER TABLE enrichment_jobs ADD COLUMN IF NOT EXISTS reused_fields TEXT[];
ALTER TABLE enrichment_jobs ADD COLUMN IF NOT EXISTS reuse_silver_id UUID
    CONSTRAINT fk_enrichment_jobs_reuse_silver_id_silver_enriched_tracks
    REFERENCES silver_enriched_tracks (id) ON DELETE SET NULL;
ALTER TABLE enrichment_jobs ADD COLUMN IF NOT EXISTS waits_for UUID
    CONSTRAINT fk_enrichment_jobs_waits_for_enrichment_jobs
    REFERENCES enrichment_jobs (id) ON DELETE SET NULL;
CREATE INDEX IF NOT EXISTS ix_enrichment_jobs_waits_for
    ON enrichment_jobs (waits_for) WHERE waits_for IS NOT NULL;

CREATE TABLE IF NOT EXISTS silver_field_checks (
    silver_track_id UUID        NOT NULL,
    metadata_field  TEXT        NOT NULL,
    checked_run_id  UUID,
    checked_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    config_hash     TEXT        NOT NULL,
    CONSTRAINT pk_silver_field_checks PRIMARY KEY (silver_track_id, metadata_field),
    CONSTRAINT fk_silver_field_checks_silver_track_id
        FOREIGN KEY (silver_track_id) REFERENCES silver_enriched_tracks (id) ON DELETE CASCADE,
    CONSTRAINT fk_silver_field_checks_checked_run_id
        FOREIGN KEY (checked_run_id) REFERENCES enrichment_pipeline_runs (id) ON DELETE SET NULL
);
-- The scheduled re-enrichment takes the oldest checks first.
CREATE INDEX IF NOT EXISTS ix_silver_field_checks_checked_at
    ON silver_field_checks (checked_at);

CREATE TABLE IF NOT EXISTS enrichment_flights (
    identity_key  TEXT        NOT NULL,
    leader_job_id UUID        NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_enrichment_flights PRIMARY KEY (identity_key),
    CONSTRAINT fk_enrichment_flights_leader_job_id
        FOREIGN KEY (leader_job_id) REFERENCES enrichment_jobs (id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS ix_enrichment_flights_leader_job_id
    ON enrichment_flights (leader_job_id);

-- What of a field's configuration decides its value: providers and thresholds of the four
-- slots, the acceptance floor and the mode. ``cfg`` is a config row as JSON (to_jsonb of the
-- live row, or a run's waterfall_config_snapshot -> field). NULL for NULL.
CREATE OR REPLACE FUNCTION field_config_hash(cfg JSONB) RETURNS TEXT
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT md5(jsonb_build_array(
        cfg -> 'priority_1_provider', cfg -> 'priority_1_confidence',
        cfg -> 'priority_2_provider', cfg -> 'priority_2_confidence',
        cfg -> 'priority_3_provider', cfg -> 'priority_3_confidence',
        cfg -> 'priority_4_provider', cfg -> 'priority_4_confidence',
        cfg -> 'min_acceptable_confidence', coalesce(cfg -> 'waterfall_mode', '"sequential"')
    )::text)
$$;

-- A check is fresh under configuration ``cfg`` at ``at`` when it was made under the same
-- configuration of the field and is younger than the field's fresh_for (NULL: for ever).
CREATE OR REPLACE FUNCTION field_check_is_fresh(
    checked_at TIMESTAMPTZ, config_hash TEXT, cfg JSONB, at TIMESTAMPTZ DEFAULT now()
) RETURNS BOOLEAN
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(cfg IS NOT NULL AND config_hash = field_config_hash(cfg)
        AND (cfg ->> 'fresh_for' IS NULL
             OR checked_at + CAST(cfg ->> 'fresh_for' AS INTERVAL) > at), false)
$$;
