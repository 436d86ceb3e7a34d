-- 016 down: the rollup's agreement, chosen and cost columns go; 004's columns remain.
ALTER TABLE provider_performance_history
    DROP CONSTRAINT IF EXISTS ck_provider_performance_history_agreement;
ALTER TABLE provider_performance_history
    DROP COLUMN IF EXISTS compared_count,
    DROP COLUMN IF EXISTS agreement_count,
    DROP COLUMN IF EXISTS chosen_count,
    DROP COLUMN IF EXISTS total_cost_usd;
