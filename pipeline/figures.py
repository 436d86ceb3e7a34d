"""Figures that several views show, defined once: ``songnodes report`` (and its plot), the
Prometheus metrics (and so the Grafana dashboard) and the alert rules all read these functions,
so the same number never has two definitions (issue 18, item 4)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

__all__ = [
    "BREAKER_KEY_PREFIX",
    "COMPLETENESS_FIELDS",
    "REPORT_DAYS",
    "ProviderSuccess",
    "breaker_states",
    "field_fill",
    "field_fill_rates",
    "provider_success",
    "redis_from_env",
]

COMPLETENESS_FIELDS = ("bpm", "key", "isrc", "genre", "spotify_id", "release_date", "energy")
#: The window the report shows by default, and the one the provider success gauge uses, so the
#: dashboard and ``songnodes report --plot`` show the same success rates.
REPORT_DAYS = 7


def _present(column: str) -> str:
    # An empty genre array is "no genre", as in maintenance.record_quality_metrics.
    return f"({column} IS NOT NULL AND cardinality({column}) > 0)" if column == "genre" else (
        f"{column} IS NOT NULL"
    )


def field_fill_rates(session: Session) -> dict[str, float]:
    """Percent (0-100, one decimal) of silver tracks with each field set; {} with no tracks."""
    return field_fill(session)[1]


def field_fill(session: Session) -> tuple[int, dict[str, float]]:
    """(silver tracks, ``field_fill_rates``) from one pass over silver."""
    cols = ", ".join(
        f"round(100.0 * avg(({_present(c)})::int), 1) AS {c}" for c in COMPLETENESS_FIELDS
    )
    row = (
        session.execute(text(f"SELECT count(*) AS n, {cols} FROM silver_enriched_tracks"))
        .one()
        ._mapping
    )
    if not row["n"]:
        return 0, {}
    return int(row["n"]), {c: float(row[c] or 0) for c in COMPLETENESS_FIELDS}


@dataclass(frozen=True, slots=True)
class ProviderSuccess:
    provider: str
    lookups: int  # answered (not pending) lookups in the window
    found: int

    @property
    def rate(self) -> float:
        return round(self.found / self.lookups, 3) if self.lookups else 0.0


def provider_success(session: Session, since: dt.datetime) -> dict[str, ProviderSuccess]:
    """Per provider: answered lookups since ``since`` and how many found the track."""
    rows = session.execute(
        text("""
            SELECT provider, count(*) AS lookups, count(*) FILTER (WHERE status = 'found') AS found
            FROM enrichment_lookups
            WHERE updated_at >= :since AND status <> 'pending'
            GROUP BY provider ORDER BY provider"""),
        {"since": since},
    )
    return {r.provider: ProviderSuccess(r.provider, int(r.lookups), int(r.found)) for r in rows}


def breaker_states(session: Session, redis_client: object | None = None) -> dict[str, str]:
    """Circuit state (closed/open/half_open) of every registered provider.

    With Redis (``REDIS_URL``, where every worker keeps its breakers) the live state is read from
    the breaker's hash; without it, ``enrichment_providers.health_status`` (which the
    health-check beat task copies from the breakers) is mapped back to a state."""
    from providers.breaker import HEALTH_STATUS

    by_health = {health: state.value for state, health in HEALTH_STATUS.items()}
    rows = session.execute(
        text("SELECT provider_name, health_status FROM enrichment_providers ORDER BY 1")
    ).all()
    if redis_client is None:
        return {p: by_health.get(h or "healthy", "closed") for p, h in rows}
    import redis

    assert isinstance(redis_client, redis.Redis)
    pipe = redis_client.pipeline(transaction=False)
    for provider, _ in rows:
        pipe.hget(f"{BREAKER_KEY_PREFIX}:{provider}", "state")
    out = {}
    for (provider, _), raw in zip(rows, pipe.execute(), strict=True):
        out[provider] = raw.decode() if isinstance(raw, bytes) else (raw or "closed")
    return out


#: providers.breaker.CircuitBreaker's default key prefix (its hash per provider).
BREAKER_KEY_PREFIX = "songnodes:breaker"


def redis_from_env() -> object | None:
    """A Redis client for ``REDIS_URL`` (limiter/breaker state), or None when unset."""
    import os

    import redis

    url = os.environ.get("REDIS_URL")
    return redis.Redis.from_url(url, socket_timeout=2) if url else None
