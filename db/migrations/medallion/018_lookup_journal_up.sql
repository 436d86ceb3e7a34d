-- 018 lookup answer journal (issue 20: a lookup that already has its provider's answer never
-- asks the provider again). A lookup task writes each provider answer here as soon as it
-- arrives, in its own short transaction, before the whole message is recorded. A worker
-- killed mid-message leaves its answers here; the next delivery of those lookups (redelivery,
-- sweeper re-send) records the journaled answer instead of asking (and paying) again.
-- record_outcomes deletes the rows it records, in the recording transaction, so the table
-- holds only answers not yet recorded (a few per busy worker thread).
--   * answer: the LookupOutcome as JSON (status, values with confidence and raw, rejected,
--     unavailable, replaced_id, match_confidence, latency, error, and the raw responses with
--     their calls, already redacted at the HTTP edge like every stored response).
--   * holder: the task id that asked (for operators; a later delivery uses any holder's row).
-- Needs 006. Re-runnable.
CREATE TABLE IF NOT EXISTS enrichment_lookup_answers (
    job_id     UUID        NOT NULL,
    provider   TEXT        NOT NULL,
    answer     JSONB       NOT NULL,
    holder     TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_enrichment_lookup_answers PRIMARY KEY (job_id, provider),
    CONSTRAINT fk_enrichment_lookup_answers_job_id
        FOREIGN KEY (job_id, provider) REFERENCES enrichment_lookups (job_id, provider)
        ON DELETE CASCADE
);
