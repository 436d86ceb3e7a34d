"""Alert evaluation: the seed's monitoring queries (MEDALLION.md, "Monitoring & Alerting") and
the pipeline's own failure modes, with thresholds in SQL (``alert_rules``, migration 015).

Each evaluation measures every condition, compares each measurement with its rule (the
per-subject row, else the condition's ``'*'`` row), and turns the difference with
``alert_state`` (what fired at the last evaluation) into ``alert_events`` rows: one ``firing``
when a condition x subject starts breaching, one ``resolved`` when it stops. An advisory lock
serialises evaluations, so beat and a cron'd ``songnodes alerts`` never record a change twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from pipeline import figures

__all__ = [
    "CONDITIONS",
    "Alert",
    "Change",
    "Evaluation",
    "Measurement",
    "Rule",
    "describe",
    "evaluate",
    "firing",
    "history",
    "load_rules",
    "measure",
]

log = logging.getLogger("songnodes.alerts")

#: Every condition, in the order they are listed (the CHECK constraint of alert_rules).
CONDITIONS = (
    "quality_trend",
    "provider_success_rate",
    "failed_runs",
    "field_completeness",
    "queue_lag",
    "stuck_runs",
    "quarantine_growth",
    "breaker_open",
)
_LOCK_KEY = 0x534E_4131  # "SNA1": pg_advisory_xact_lock key of the evaluation


@dataclass(frozen=True, slots=True)
class Rule:
    condition: str
    subject: str
    threshold: float
    comparison: str  # above | below
    window_s: int
    min_samples: int
    enabled: bool

    def breached(self, value: float, samples: int) -> bool:
        if not self.enabled or samples < self.min_samples:
            return False
        return value > self.threshold if self.comparison == "above" else value < self.threshold


@dataclass(frozen=True, slots=True)
class Measurement:
    condition: str
    subject: str
    value: float
    samples: int = 1  # how many things the value is computed from (min_samples guards it)


@dataclass(frozen=True, slots=True)
class Alert:
    """Something that fires (a row of alert_state)."""

    condition: str
    subject: str
    value: float
    threshold: float
    since: dt.datetime


@dataclass(frozen=True, slots=True)
class Change:
    """A firing or a resolution recorded by this evaluation (a row of alert_events)."""

    event: str  # firing | resolved
    condition: str
    subject: str
    value: float | None
    threshold: float
    at: dt.datetime


@dataclass
class Evaluation:
    firing: list[Alert] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    measurements: list[Measurement] = field(default_factory=list)


def load_rules(session: Session) -> dict[tuple[str, str], Rule]:
    rows = session.execute(
        text(
            "SELECT condition, subject, threshold, comparison, window_s, min_samples, enabled "
            "FROM alert_rules"
        )
    )
    return {
        (r.condition, r.subject): Rule(
            r.condition,
            r.subject,
            float(r.threshold),
            r.comparison,
            int(r.window_s),
            int(r.min_samples),
            bool(r.enabled),
        )
        for r in rows
    }


def _rule(rules: dict[tuple[str, str], Rule], condition: str, subject: str) -> Rule | None:
    return rules.get((condition, subject)) or rules.get((condition, "*"))


def _window(rules: dict[tuple[str, str], Rule], condition: str) -> int:
    rule = rules.get((condition, "*"))
    return rule.window_s if rule else 86400


def measure(
    session: Session,
    rules: dict[tuple[str, str], Rule],
    redis_client: object | None = None,
) -> list[Measurement]:
    """Every condition's current value per subject (the window of its ``'*'`` rule)."""
    now = session.execute(text("SELECT now()")).scalar_one()
    out: list[Measurement] = []
    # Quality trend (seed: "should trend upward"): the latest daily silver score against the
    # mean of the 7 days before it; the value is the drop (positive = worse).
    trend = session.execute(
        text("""
            WITH d AS (SELECT metric_date, avg_quality_score FROM data_quality_metrics
                       WHERE data_layer = 'silver' AND metric_hour IS NULL
                         AND avg_quality_score IS NOT NULL
                       ORDER BY metric_date DESC LIMIT 8)
            SELECT (SELECT avg(avg_quality_score) FROM d
                    WHERE metric_date < (SELECT max(metric_date) FROM d)) AS before,
                   (SELECT avg_quality_score FROM d ORDER BY metric_date DESC LIMIT 1) AS latest,
                   (SELECT count(*) - 1 FROM d) AS days""")
    ).one()
    if trend.before is not None and trend.latest is not None:
        out.append(
            Measurement(
                "quality_trend", "silver", float(trend.before - trend.latest), int(trend.days)
            )
        )
    since = now - dt.timedelta(seconds=_window(rules, "provider_success_rate"))
    for s in figures.provider_success(session, since).values():
        out.append(Measurement("provider_success_rate", s.provider, s.rate, s.lookups))
    for run_type, count in session.execute(
        text("""
            SELECT run_type, count(*) FROM enrichment_pipeline_runs
            WHERE run_status = 'failed' AND started_at >= now() - make_interval(secs => :w)
            GROUP BY run_type ORDER BY run_type"""),
        {"w": _window(rules, "failed_runs")},
    ):
        out.append(Measurement("failed_runs", run_type, float(count), int(count)))
    n_silver, fill = figures.field_fill(session)
    for name, pct in fill.items():
        out.append(Measurement("field_completeness", name, pct, n_silver))
    # The partial index of pending lookups answers this without touching answered ones.
    for provider, age in session.execute(
        text("""
            SELECT provider, extract(epoch FROM now() - min(created_at))
            FROM enrichment_lookups WHERE status = 'pending' GROUP BY provider ORDER BY 1""")
    ):
        out.append(Measurement("queue_lag", provider, float(age)))
    for run_id, age in session.execute(
        text("""
            SELECT id, extract(epoch FROM now() - started_at) FROM enrichment_pipeline_runs
            WHERE run_status = 'running' ORDER BY started_at""")
    ):
        out.append(Measurement("stuck_runs", str(run_id), float(age)))
    quarantined = session.execute(
        text(
            "SELECT count(*) FROM ingest_quarantine "
            "WHERE received_at >= now() - make_interval(secs => :w)"
        ),
        {"w": _window(rules, "quarantine_growth")},
    ).scalar_one()
    out.append(Measurement("quarantine_growth", "ingest", float(quarantined)))
    for provider, state in figures.breaker_states(session, redis_client).items():
        out.append(Measurement("breaker_open", provider, 1.0 if state == "open" else 0.0))
    return out


def _num(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(str(round(value, 4)))


def evaluate(
    session: Session,
    redis_client: object | None = None,
    rules: dict[tuple[str, str], Rule] | None = None,
) -> Evaluation:
    """Measure, compare with the rules, record firings and resolutions; returns what fires.

    Runs in the caller's transaction (commit it to keep the events)."""
    session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    rules = load_rules(session) if rules is None else rules
    result = Evaluation(measurements=measure(session, rules, redis_client))
    breaching: dict[tuple[str, str], tuple[float, float]] = {}
    measured: dict[tuple[str, str], float] = {}
    for m in result.measurements:
        measured[(m.condition, m.subject)] = m.value
        rule = _rule(rules, m.condition, m.subject)
        if rule is not None and rule.breached(m.value, m.samples):
            breaching[(m.condition, m.subject)] = (m.value, rule.threshold)
    state = {
        (r.condition, r.subject): r
        for r in session.execute(
            text("SELECT condition, subject, threshold, firing_since FROM alert_state")
        )
    }
    now = session.execute(text("SELECT now()")).scalar_one()
    for key in sorted(state.keys() - breaching.keys()):
        value = measured.get(key)
        # The rule's threshold now (an operator may have raised it: that is why it resolved).
        rule = _rule(rules, *key)
        threshold = rule.threshold if rule is not None else float(state[key].threshold)
        session.execute(
            text("DELETE FROM alert_state WHERE condition = :c AND subject = :s"),
            {"c": key[0], "s": key[1]},
        )
        result.changes.append(Change("resolved", key[0], key[1], value, threshold, now))
    for key in sorted(breaching.keys() - state.keys()):
        value, threshold = breaching[key]
        result.changes.append(Change("firing", key[0], key[1], value, threshold, now))
    for change in result.changes:
        session.execute(
            text("""INSERT INTO alert_events (occurred_at, condition, subject, event, value,
                                              threshold)
                    VALUES (:at, :c, :s, :e, :v, :t)"""),
            {
                "at": change.at,
                "c": change.condition,
                "s": change.subject,
                "e": change.event,
                "v": _num(change.value),
                "t": _num(change.threshold),
            },
        )
    for (condition, subject), (value, threshold) in sorted(breaching.items()):
        session.execute(
            text("""
                INSERT INTO alert_state AS a (condition, subject, value, threshold,
                                              firing_since, last_evaluated_at)
                VALUES (:c, :s, :v, :t, :now, :now)
                ON CONFLICT (condition, subject) DO UPDATE SET
                    value = EXCLUDED.value, threshold = EXCLUDED.threshold,
                    last_evaluated_at = EXCLUDED.last_evaluated_at"""),
            {"c": condition, "s": subject, "v": _num(value), "t": _num(threshold), "now": now},
        )
    result.firing = firing(session)
    if result.changes:
        log.info(
            "alerts changed",
            extra={"changes": [f"{c.event}:{c.condition}:{c.subject}" for c in result.changes]},
        )
    return result


def firing(session: Session) -> list[Alert]:
    """What fires now (as of the last evaluation)."""
    return [
        Alert(r.condition, r.subject, float(r.value), float(r.threshold), r.firing_since)
        for r in session.execute(
            text(
                "SELECT condition, subject, value, threshold, firing_since FROM alert_state "
                "ORDER BY condition, subject"
            )
        )
    ]


def history(session: Session, limit: int = 50) -> list[dict[str, Any]]:
    """The latest ``limit`` firings and resolutions, newest first."""
    return [
        dict(r._mapping)
        for r in session.execute(
            text(
                "SELECT occurred_at, event, condition, subject, value, threshold "
                "FROM alert_events ORDER BY id DESC LIMIT :n"
            ),
            {"n": limit},
        )
    ]


def describe(items: Iterable[Alert | Change]) -> list[str]:
    """One human line per alert or change (CLI, Slack)."""
    lines = []
    for a in items:
        verb = a.event.upper() if isinstance(a, Change) else "FIRING"
        value = "n/a" if a.value is None else f"{a.value:g}"
        lines.append(f"{verb} {a.condition} [{a.subject}] value {value} threshold {a.threshold:g}")
    return lines
