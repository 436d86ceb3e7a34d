-- 015 monitoring alerts (issue 18): the seed's "Monitoring & Alerting" queries as rules that
-- something evaluates (beat, or `songnodes alerts` from cron).
--   * alert_rules: one row per condition (subject '*') and optional per-subject overrides (a
--     provider, a field); the threshold, its direction, the look-back window and a minimum sample
--     live here so operators tune them with SQL, without a deploy;
--   * alert_state: what fires right now (one row per condition x subject);
--   * alert_events: every firing and every resolution, never updated (the history).
-- Re-runnable, no psql meta-commands.

CREATE TABLE IF NOT EXISTS alert_rules (
    condition   TEXT          NOT NULL,
    subject     TEXT          NOT NULL DEFAULT '*',
    threshold   NUMERIC(14, 4) NOT NULL,
    comparison  TEXT          NOT NULL,
    window_s    INTEGER       NOT NULL DEFAULT 86400,
    min_samples INTEGER       NOT NULL DEFAULT 0,
    enabled     BOOLEAN       NOT NULL DEFAULT true,
    description TEXT,
    updated_at  TIMESTAMPTZ   NOT NULL DEFAULT now(),
    CONSTRAINT pk_alert_rules PRIMARY KEY (condition, subject),
    CONSTRAINT ck_alert_rules_comparison CHECK (comparison IN ('above', 'below')),
    CONSTRAINT ck_alert_rules_window_s CHECK (window_s > 0),
    CONSTRAINT ck_alert_rules_min_samples CHECK (min_samples >= 0),
    CONSTRAINT ck_alert_rules_condition CHECK (condition IN (
        'quality_trend', 'provider_success_rate', 'failed_runs', 'field_completeness',
        'queue_lag', 'stuck_runs', 'quarantine_growth', 'breaker_open'))
);

INSERT INTO alert_rules (condition, subject, threshold, comparison, window_s, min_samples,
                         description)
VALUES
    ('quality_trend', '*', 0.05, 'above', 86400, 0,
     'silver avg quality of the latest daily metric fell by more than this below the mean of the 7 days before'),
    ('provider_success_rate', '*', 0.70, 'below', 86400, 20,
     'share of a provider''s answered lookups in the window that found the track (seed: alert under 70%)'),
    ('failed_runs', '*', 0, 'above', 86400, 0,
     'runs of a run_type that failed in the window (seed: alert on any in the last 24 hours)'),
    ('field_completeness', '*', 80, 'below', 86400, 1,
     'percent of silver tracks with the field set (seed: alert under 80%)'),
    ('queue_lag', '*', 600, 'above', 86400, 0,
     'seconds the oldest pending lookup of a provider has waited'),
    ('stuck_runs', '*', 21600, 'above', 86400, 0,
     'seconds a run has been open (default = SONGNODES_REAP_AFTER_S, the reaper threshold)'),
    ('quarantine_growth', '*', 10, 'above', 3600, 0,
     'envelopes quarantined in the window'),
    ('breaker_open', '*', 0, 'above', 86400, 0,
     '1 while a provider''s circuit breaker is open')
ON CONFLICT (condition, subject) DO NOTHING;

CREATE TABLE IF NOT EXISTS alert_state (
    condition         TEXT           NOT NULL,
    subject           TEXT           NOT NULL,
    value             NUMERIC(20, 4) NOT NULL,
    threshold         NUMERIC(14, 4) NOT NULL,
    firing_since      TIMESTAMPTZ    NOT NULL DEFAULT now(),
    last_evaluated_at TIMESTAMPTZ    NOT NULL DEFAULT now(),
    CONSTRAINT pk_alert_state PRIMARY KEY (condition, subject)
);

CREATE TABLE IF NOT EXISTS alert_events (
    id          BIGINT GENERATED ALWAYS AS IDENTITY,
    occurred_at TIMESTAMPTZ    NOT NULL DEFAULT now(),
    condition   TEXT           NOT NULL,
    subject     TEXT           NOT NULL,
    event       TEXT           NOT NULL,
    value       NUMERIC(20, 4),
    threshold   NUMERIC(14, 4) NOT NULL,
    CONSTRAINT pk_alert_events PRIMARY KEY (id),
    CONSTRAINT ck_alert_events_event CHECK (event IN ('firing', 'resolved'))
);
CREATE INDEX IF NOT EXISTS ix_alert_events_occurred_at ON alert_events (occurred_at DESC);
