-- 005 pipeline replay and lineage: run audit log with config snapshots, field-level
-- transformations, per-field provenance, replay queue, data quality metrics. Needs 001-004.

CREATE TABLE IF NOT EXISTS enrichment_pipeline_runs (
    id                       UUID          NOT NULL DEFAULT gen_random_uuid(),
    run_type                 TEXT          NOT NULL,
    run_status               TEXT          NOT NULL DEFAULT 'running',
    source_filter            TEXT[],
    date_range_start         TIMESTAMPTZ,
    date_range_end           TIMESTAMPTZ,
    waterfall_config_snapshot JSONB,
    provider_config_snapshot JSONB,
    records_processed        INTEGER       NOT NULL DEFAULT 0,
    records_succeeded        INTEGER       NOT NULL DEFAULT 0,
    records_failed           INTEGER       NOT NULL DEFAULT 0,
    records_skipped          INTEGER       NOT NULL DEFAULT 0,
    error_summary            JSONB,
    critical_errors          TEXT[],
    total_api_calls          INTEGER       NOT NULL DEFAULT 0,
    total_api_cost_usd       NUMERIC(10, 4),
    avg_processing_time_ms   INTEGER,
    started_at               TIMESTAMPTZ   NOT NULL DEFAULT now(),
    completed_at             TIMESTAMPTZ,
    duration_seconds         NUMERIC GENERATED ALWAYS AS (
        EXTRACT(EPOCH FROM (completed_at - started_at))
    ) STORED,
    triggered_by             TEXT,
    execution_environment    TEXT,
    CONSTRAINT pk_enrichment_pipeline_runs PRIMARY KEY (id),
    CONSTRAINT ck_enrichment_pipeline_runs_run_type
        CHECK (run_type IN ('full', 'incremental', 'manual', 'replay', 'backfill')),
    CONSTRAINT ck_enrichment_pipeline_runs_run_status
        CHECK (run_status IN ('running', 'completed', 'failed', 'partial', 'cancelled')),
    CONSTRAINT ck_enrichment_pipeline_runs_counts_positive CHECK (
        records_processed >= 0 AND records_succeeded >= 0 AND records_failed >= 0
        AND records_skipped >= 0 AND total_api_calls >= 0)
);
CREATE INDEX IF NOT EXISTS ix_enrichment_pipeline_runs_status_started
    ON enrichment_pipeline_runs (run_status, started_at DESC);
CREATE INDEX IF NOT EXISTS ix_enrichment_pipeline_runs_started_at
    ON enrichment_pipeline_runs (started_at DESC);

CREATE TABLE IF NOT EXISTS enrichment_transformations (
    id                   UUID          NOT NULL DEFAULT gen_random_uuid(),
    run_id               UUID          NOT NULL,
    bronze_id            UUID,
    silver_id            UUID,
    transformation_type  TEXT          NOT NULL,
    metadata_field       TEXT,
    provider_used        TEXT,
    provider_confidence  NUMERIC(3, 2),
    input_value          JSONB,
    output_value         JSONB,
    transformation_rules JSONB,
    success              BOOLEAN       NOT NULL,
    error_message        TEXT,
    retry_count          INTEGER       NOT NULL DEFAULT 0,
    processing_time_ms   INTEGER,
    api_endpoint_called  TEXT,
    api_response_code    INTEGER,
    api_cost_usd         NUMERIC(10, 6),
    created_at           TIMESTAMPTZ   NOT NULL DEFAULT now(),
    CONSTRAINT pk_enrichment_transformations PRIMARY KEY (id),
    CONSTRAINT fk_enrichment_transformations_run_id
        FOREIGN KEY (run_id) REFERENCES enrichment_pipeline_runs (id) ON DELETE CASCADE,
    CONSTRAINT fk_enrichment_transformations_bronze_id
        FOREIGN KEY (bronze_id) REFERENCES bronze_scraped_tracks (id) ON DELETE SET NULL,
    CONSTRAINT fk_enrichment_transformations_silver_id
        FOREIGN KEY (silver_id) REFERENCES silver_enriched_tracks (id) ON DELETE SET NULL,
    CONSTRAINT ck_enrichment_transformations_transformation_type CHECK (transformation_type IN
        ('enrichment', 'validation', 'normalization', 'deduplication', 'merge', 'correction')),
    CONSTRAINT ck_enrichment_transformations_confidence_range
        CHECK (provider_confidence IS NULL OR provider_confidence BETWEEN 0 AND 1),
    CONSTRAINT ck_enrichment_transformations_retry_count_positive CHECK (retry_count >= 0)
);
CREATE INDEX IF NOT EXISTS ix_enrichment_transformations_run_id
    ON enrichment_transformations (run_id);
CREATE INDEX IF NOT EXISTS ix_enrichment_transformations_bronze_id
    ON enrichment_transformations (bronze_id) WHERE bronze_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS ix_enrichment_transformations_silver_id
    ON enrichment_transformations (silver_id) WHERE silver_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS ix_enrichment_transformations_field_provider
    ON enrichment_transformations (metadata_field, provider_used);
CREATE INDEX IF NOT EXISTS ix_enrichment_transformations_created_at
    ON enrichment_transformations (created_at DESC);

CREATE TABLE IF NOT EXISTS field_provenance (
    id                      UUID          NOT NULL DEFAULT gen_random_uuid(),
    silver_track_id         UUID          NOT NULL,
    metadata_field          TEXT          NOT NULL,
    original_bronze_id      UUID,
    original_source         TEXT,
    original_value          JSONB,
    transformation_chain    UUID[]        NOT NULL DEFAULT '{}',
    final_transformation_id UUID,
    current_value           JSONB,
    current_confidence      NUMERIC(3, 2),
    current_provider        TEXT,
    total_transformations   INTEGER       NOT NULL DEFAULT 0,
    last_modified_run_id    UUID,
    created_at              TIMESTAMPTZ   NOT NULL DEFAULT now(),
    updated_at              TIMESTAMPTZ   NOT NULL DEFAULT now(),
    CONSTRAINT pk_field_provenance PRIMARY KEY (id),
    CONSTRAINT fk_field_provenance_silver_track_id
        FOREIGN KEY (silver_track_id) REFERENCES silver_enriched_tracks (id) ON DELETE CASCADE,
    CONSTRAINT fk_field_provenance_original_bronze_id
        FOREIGN KEY (original_bronze_id) REFERENCES bronze_scraped_tracks (id) ON DELETE SET NULL,
    CONSTRAINT fk_field_provenance_final_transformation_id
        FOREIGN KEY (final_transformation_id) REFERENCES enrichment_transformations (id)
        ON DELETE SET NULL,
    CONSTRAINT fk_field_provenance_last_modified_run_id
        FOREIGN KEY (last_modified_run_id) REFERENCES enrichment_pipeline_runs (id)
        ON DELETE SET NULL,
    CONSTRAINT uq_field_provenance_silver_track_id_metadata_field
        UNIQUE (silver_track_id, metadata_field),
    CONSTRAINT ck_field_provenance_confidence_range
        CHECK (current_confidence IS NULL OR current_confidence BETWEEN 0 AND 1)
);
CREATE INDEX IF NOT EXISTS ix_field_provenance_transformation_chain
    ON field_provenance USING gin (transformation_chain);

-- bronze_ids is TEXT[] validated as UUIDs, not UUID[]: the seed queues a replay with
-- ARRAY['<uuid>', ...], a text[] that PostgreSQL will not assign to uuid[] implicitly.
CREATE TABLE IF NOT EXISTS pipeline_replay_queue (
    id                     UUID        NOT NULL DEFAULT gen_random_uuid(),
    bronze_ids             TEXT[]      NOT NULL,
    target_layer           TEXT        NOT NULL DEFAULT 'silver',
    replay_from_bronze     BOOLEAN     NOT NULL DEFAULT TRUE,
    fields_to_replay       TEXT[],
    force_re_enrichment    BOOLEAN     NOT NULL DEFAULT FALSE,
    use_historical_config  BOOLEAN     NOT NULL DEFAULT FALSE,
    config_snapshot_run_id UUID,
    status                 TEXT        NOT NULL DEFAULT 'queued',
    assigned_run_id        UUID,
    requested_by           TEXT        NOT NULL,
    reason                 TEXT,
    priority               INTEGER     NOT NULL DEFAULT 5,
    error_message          TEXT,
    created_at             TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at             TIMESTAMPTZ,
    completed_at           TIMESTAMPTZ,
    CONSTRAINT pk_pipeline_replay_queue PRIMARY KEY (id),
    CONSTRAINT fk_pipeline_replay_queue_config_snapshot_run_id
        FOREIGN KEY (config_snapshot_run_id) REFERENCES enrichment_pipeline_runs (id),
    CONSTRAINT fk_pipeline_replay_queue_assigned_run_id
        FOREIGN KEY (assigned_run_id) REFERENCES enrichment_pipeline_runs (id),
    CONSTRAINT ck_pipeline_replay_queue_bronze_ids_uuid CHECK (
        cardinality(bronze_ids) > 0
        AND array_position(bronze_ids, NULL) IS NULL
        AND array_to_string(bronze_ids, ',') ~*
            '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(,[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})*$'),
    CONSTRAINT ck_pipeline_replay_queue_target_layer CHECK (target_layer IN ('silver', 'gold')),
    CONSTRAINT ck_pipeline_replay_queue_status
        CHECK (status IN ('queued', 'processing', 'completed', 'failed', 'cancelled')),
    CONSTRAINT ck_pipeline_replay_queue_priority_range CHECK (priority BETWEEN 1 AND 10),
    CONSTRAINT ck_pipeline_replay_queue_historical_config
        CHECK (NOT use_historical_config OR config_snapshot_run_id IS NOT NULL)
);
CREATE INDEX IF NOT EXISTS ix_pipeline_replay_queue_queued
    ON pipeline_replay_queue (priority DESC, created_at) WHERE status = 'queued';
CREATE INDEX IF NOT EXISTS ix_pipeline_replay_queue_processing
    ON pipeline_replay_queue (started_at) WHERE status = 'processing';

CREATE TABLE IF NOT EXISTS data_quality_metrics (
    id                        UUID          NOT NULL DEFAULT gen_random_uuid(),
    metric_date               DATE          NOT NULL,
    metric_hour               INTEGER,
    data_layer                TEXT          NOT NULL,
    total_records             INTEGER       NOT NULL DEFAULT 0,
    valid_records             INTEGER       NOT NULL DEFAULT 0,
    warning_records           INTEGER       NOT NULL DEFAULT 0,
    failed_records            INTEGER       NOT NULL DEFAULT 0,
    avg_field_completeness    NUMERIC(5, 2),
    avg_quality_score         NUMERIC(3, 2),
    avg_enrichment_confidence NUMERIC(3, 2),
    field_completeness        JSONB,
    provider_success_rates    JSONB,
    created_at                TIMESTAMPTZ   NOT NULL DEFAULT now(),
    CONSTRAINT pk_data_quality_metrics PRIMARY KEY (id),
    -- NULLS NOT DISTINCT: daily rows (metric_hour NULL) are one per day and layer too.
    CONSTRAINT uq_data_quality_metrics_period UNIQUE NULLS NOT DISTINCT
        (metric_date, metric_hour, data_layer),
    CONSTRAINT ck_data_quality_metrics_metric_hour_range
        CHECK (metric_hour IS NULL OR metric_hour BETWEEN 0 AND 23),
    CONSTRAINT ck_data_quality_metrics_data_layer
        CHECK (data_layer IN ('bronze', 'silver', 'gold')),
    CONSTRAINT ck_data_quality_metrics_completeness_range
        CHECK (avg_field_completeness IS NULL OR avg_field_completeness BETWEEN 0 AND 100),
    CONSTRAINT ck_data_quality_metrics_quality_range CHECK (
        (avg_quality_score IS NULL OR avg_quality_score BETWEEN 0 AND 1)
        AND (avg_enrichment_confidence IS NULL OR avg_enrichment_confidence BETWEEN 0 AND 1))
);

-- Opens a run with a snapshot of the enabled waterfall and the provider registry, so a replay
-- can use exactly the configuration this run saw.
CREATE OR REPLACE FUNCTION start_pipeline_run(
    run_type TEXT,
    triggered_by TEXT,
    execution_environment TEXT DEFAULT 'production',
    source_filter TEXT[] DEFAULT NULL,
    date_range_start TIMESTAMPTZ DEFAULT NULL,
    date_range_end TIMESTAMPTZ DEFAULT NULL
) RETURNS UUID
LANGUAGE sql VOLATILE AS $$
    INSERT INTO enrichment_pipeline_runs (
        run_type, triggered_by, execution_environment, source_filter, date_range_start,
        date_range_end, waterfall_config_snapshot, provider_config_snapshot)
    VALUES (
        start_pipeline_run.run_type, start_pipeline_run.triggered_by,
        start_pipeline_run.execution_environment, start_pipeline_run.source_filter,
        start_pipeline_run.date_range_start, start_pipeline_run.date_range_end,
        (SELECT coalesce(jsonb_object_agg(c.metadata_field, to_jsonb(c)), '{}'::jsonb)
         FROM metadata_enrichment_config c WHERE c.enabled),
        (SELECT coalesce(jsonb_object_agg(p.provider_name, to_jsonb(p)), '{}'::jsonb)
         FROM enrichment_providers p))
    RETURNING id;
$$;

CREATE OR REPLACE FUNCTION complete_pipeline_run(
    run_id UUID, status TEXT DEFAULT 'completed', error_summary JSONB DEFAULT NULL
) RETURNS VOID
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    UPDATE enrichment_pipeline_runs r
    SET run_status = complete_pipeline_run.status,
        completed_at = now(),
        error_summary = coalesce(complete_pipeline_run.error_summary, r.error_summary)
    WHERE r.id = complete_pipeline_run.run_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'enrichment_pipeline_runs has no run %', complete_pipeline_run.run_id
            USING ERRCODE = 'no_data_found';
    END IF;
END;
$$;

-- Parameter names match the seed's call (input_value =>, output_value =>, success =>,
-- confidence =>) so named notation works from SQL.
CREATE OR REPLACE FUNCTION log_transformation(
    run_id UUID,
    transformation_type TEXT,
    metadata_field TEXT,
    provider_used TEXT,
    input_value JSONB DEFAULT NULL,
    output_value JSONB DEFAULT NULL,
    success BOOLEAN DEFAULT TRUE,
    confidence NUMERIC DEFAULT NULL,
    bronze_id UUID DEFAULT NULL,
    silver_id UUID DEFAULT NULL,
    error_message TEXT DEFAULT NULL,
    processing_time_ms INTEGER DEFAULT NULL,
    api_endpoint_called TEXT DEFAULT NULL,
    api_response_code INTEGER DEFAULT NULL,
    api_cost_usd NUMERIC DEFAULT NULL
) RETURNS UUID
LANGUAGE sql VOLATILE AS $$
    INSERT INTO enrichment_transformations (
        run_id, transformation_type, metadata_field, provider_used, input_value, output_value,
        success, provider_confidence, bronze_id, silver_id, error_message, processing_time_ms,
        api_endpoint_called, api_response_code, api_cost_usd)
    VALUES (
        log_transformation.run_id, log_transformation.transformation_type,
        log_transformation.metadata_field, log_transformation.provider_used,
        log_transformation.input_value, log_transformation.output_value,
        log_transformation.success, log_transformation.confidence, log_transformation.bronze_id,
        log_transformation.silver_id, log_transformation.error_message,
        log_transformation.processing_time_ms, log_transformation.api_endpoint_called,
        log_transformation.api_response_code, log_transformation.api_cost_usd)
    RETURNING id;
$$;

-- Real replacement for the original placeholder: record that a transformation produced the
-- current value of a silver field (upsert; the chain keeps every step in order).
CREATE OR REPLACE FUNCTION update_field_provenance(
    silver_track_id UUID, metadata_field TEXT, transformation_id UUID
) RETURNS UUID
LANGUAGE sql VOLATILE AS $$
    INSERT INTO field_provenance AS fp (
        silver_track_id, metadata_field, original_bronze_id, original_source, original_value,
        transformation_chain, final_transformation_id, current_value, current_confidence,
        current_provider, total_transformations, last_modified_run_id)
    SELECT update_field_provenance.silver_track_id, update_field_provenance.metadata_field,
           t.bronze_id, t.provider_used, t.input_value, ARRAY[t.id], t.id, t.output_value,
           t.provider_confidence, t.provider_used, 1, t.run_id
    FROM enrichment_transformations t
    WHERE t.id = update_field_provenance.transformation_id
    ON CONFLICT (silver_track_id, metadata_field) DO UPDATE
    SET transformation_chain = fp.transformation_chain || EXCLUDED.final_transformation_id,
        final_transformation_id = EXCLUDED.final_transformation_id,
        current_value = EXCLUDED.current_value,
        current_confidence = EXCLUDED.current_confidence,
        current_provider = EXCLUDED.current_provider,
        total_transformations = fp.total_transformations + 1,
        last_modified_run_id = EXCLUDED.last_modified_run_id,
        updated_at = now()
    RETURNING fp.id;
$$;
