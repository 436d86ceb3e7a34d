"""What the nightly rollup (migration 016) says about one field's providers, for ``suggest``.

Per provider, over the last ``days`` days of ``provider_performance_history``: fill rate
(successes per request), agreement with the value the merge chose, how often it was chosen,
latency and cost. ``suggest`` prints it beside its simulated figures: the rollup covers every
run of the window, the simulation only the selection.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

__all__ = ["field_rollup"]


def field_rollup(session: Session, field: str, days: int = 30) -> list[dict[str, Any]]:
    """One row per provider that answered ``field`` in the window, best fill first."""
    rows = session.execute(
        text(
            """
            SELECT provider_name AS provider, sum(request_count) AS requests,
                   round(sum(success_count)::numeric / nullif(sum(request_count), 0), 4)
                       AS fill_rate,
                   round(sum(agreement_count)::numeric / nullif(sum(compared_count), 0), 4)
                       AS agreement,
                   sum(chosen_count) AS chosen,
                   round(avg(avg_response_time_ms)) AS avg_latency_ms,
                   sum(total_cost_usd) AS cost_usd
            FROM provider_performance_history
            WHERE metadata_field = :f AND period_start >= now() - make_interval(days => :d)
            GROUP BY provider_name ORDER BY fill_rate DESC NULLS LAST, provider_name
            """
        ),
        {"f": field, "d": days},
    )
    return [
        {k: (float(v) if v is not None and k != "provider" else v) for k, v in r._mapping.items()}
        for r in rows
    ]
