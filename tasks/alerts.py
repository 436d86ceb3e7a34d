"""Beat task: evaluate the alert rules (schedule ``evaluate-alerts`` in celeryconfig)."""

from __future__ import annotations

from db.engine import session_scope
from pipeline import alerts
from pipeline.alert_webhook import notify
from pipeline.figures import redis_from_env
from tasks.app import app

__all__ = ["evaluate_alerts"]


@app.task(name="tasks.alerts.evaluate_alerts")
def evaluate_alerts() -> dict[str, int]:
    """Record firings/resolutions, then post them to the webhook (after the commit)."""
    with session_scope() as session:
        result = alerts.evaluate(session, redis_from_env())
    notify(result.firing, result.changes)
    return {"firing": len(result.firing), "changes": len(result.changes)}
