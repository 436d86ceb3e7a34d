-- 016 provider x field rollup for waterfall suggestions (issue #19): besides requests, successes
-- (fill rate = success_count / request_count), confidence and latency, the nightly rollup keeps
-- how often each provider's answer agreed with the value the merge chose for the field, how
-- often it was the chosen one, and what the provider's calls for the field cost. Needs 004.
-- Re-runnable.
ALTER TABLE provider_performance_history
    ADD COLUMN IF NOT EXISTS compared_count INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS agreement_count INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS chosen_count INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS total_cost_usd NUMERIC(12, 6) NOT NULL DEFAULT 0;
ALTER TABLE provider_performance_history
    DROP CONSTRAINT IF EXISTS ck_provider_performance_history_agreement;
ALTER TABLE provider_performance_history
    ADD CONSTRAINT ck_provider_performance_history_agreement CHECK (
        compared_count >= 0 AND agreement_count BETWEEN 0 AND compared_count
        AND chosen_count >= 0 AND total_cost_usd >= 0);
