-- 014 recovery (issue 20: survive the broker and the database). Everything a lost or finally
-- failed message would have carried is kept in PostgreSQL, so the sweeper can re-derive it:
--   * failed_work: the input of a task that gave up (retries exhausted, or a poison message),
--     with its error; the sweeper re-runs transient failures, an operator the others;
--   * enrichment_lookups.leased_until: a lookup being asked is leased, so a re-sent duplicate
--     message never asks the provider a second time while the first is still at it;
--   * maintenance_marks: when the gold views were last refreshed (a lost refresh_views message
--     is re-derived from it) and when the last sweep ran.
--   * indexes the sweeper's reconcilers need: bronze playlists and artists by arrival (BRIN: both
--     tables are append-only), silver artists by the bronze ids they were built from (GIN).
-- Needs 006. Re-runnable.
CREATE TABLE IF NOT EXISTS failed_work (
    id          UUID        NOT NULL DEFAULT gen_random_uuid(),
    task_name   TEXT        NOT NULL,
    task_id     TEXT,
    args        JSONB       NOT NULL DEFAULT '[]'::jsonb,
    kwargs      JSONB       NOT NULL DEFAULT '{}'::jsonb,
    error       TEXT        NOT NULL,
    transient   BOOLEAN     NOT NULL DEFAULT false,
    status      TEXT        NOT NULL DEFAULT 'failed',
    reruns      INTEGER     NOT NULL DEFAULT 0,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_failed_work PRIMARY KEY (id),
    CONSTRAINT ck_failed_work_status CHECK (status IN ('failed', 'rerun', 'resolved'))
);
CREATE INDEX IF NOT EXISTS ix_failed_work_open ON failed_work (created_at) WHERE status = 'failed';

ALTER TABLE enrichment_lookups ADD COLUMN IF NOT EXISTS leased_until TIMESTAMPTZ;

CREATE TABLE IF NOT EXISTS maintenance_marks (
    name TEXT        NOT NULL,
    at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_maintenance_marks PRIMARY KEY (name)
);

ALTER TABLE enrichment_lookups ADD COLUMN IF NOT EXISTS leased_by TEXT;

CREATE INDEX IF NOT EXISTS ix_bronze_scraped_playlists_created_at
    ON bronze_scraped_playlists USING brin (created_at);
CREATE INDEX IF NOT EXISTS ix_bronze_scraped_artists_created_at
    ON bronze_scraped_artists USING brin (created_at);
CREATE INDEX IF NOT EXISTS ix_silver_enriched_artists_bronze_ids
    ON silver_enriched_artists USING gin (bronze_ids);
