-- 015 down: drop the alert tables (rules, state, history).
DROP TABLE IF EXISTS alert_events;
DROP TABLE IF EXISTS alert_state;
DROP TABLE IF EXISTS alert_rules;
