"""Cost against fill rate per field, today's waterfall and the suggested one (``report --plot``).

Both points of a field are simulations over the same stored answers (the runs of the report's
window), so they compare like with like; a field whose search finds nothing cheaper shows only
today's point. The x axis is cost per 1,000 tracks, or provider calls per track when every
provider is free (the sandbox and unpriced registries).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

__all__ = ["FieldPoint", "plot_whatif", "whatif_points"]


@dataclass(frozen=True)
class FieldPoint:
    field: str
    today_fill: float
    today_cost: float  # per track, USD
    today_calls: float  # per track
    today_order: str
    suggested_fill: float | None = None
    suggested_cost: float | None = None
    suggested_calls: float | None = None
    suggested_order: str | None = None


def whatif_points(
    session: Session, days: int, fields: Sequence[str], budget_s: float = 30.0
) -> list[FieldPoint]:
    """Today's and the best suggested configuration of each field, over the last ``days``."""
    from pipeline.whatif.config import today
    from pipeline.whatif.history import Selection, load_history
    from pipeline.whatif.suggest import suggest

    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    tracks = load_history(session, Selection(since=since))
    if not tracks:
        return []
    base = today(session)
    points = []
    wanted = [f for f in fields if f in base.rows]
    for name in wanted:
        found = suggest(session, base, tracks, name, top=1, budget_s=budget_s / len(wanted))
        t, n = found.today, max(found.today.tracks, 1)
        tf = t.fields[name]
        point: dict[str, Any] = {
            "field": name,
            "today_fill": tf.fill_rate,
            "today_cost": tf.cost_usd / n,
            "today_calls": tf.calls / n,
            "today_order": f"{tf.mode}: {','.join(tf.order)}",
        }
        if found.best:
            sf = found.best[0].simulation.fields[name]
            point |= {
                "suggested_fill": sf.fill_rate,
                "suggested_cost": sf.cost_usd / n,
                "suggested_calls": sf.calls / n,
                "suggested_order": f"{sf.mode}: {','.join(sf.order)}",
            }
        points.append(FieldPoint(**point))
    return points


def plot_whatif(ax: Any, points: Sequence[FieldPoint]) -> None:
    """Draw the points on a matplotlib axis: a dot per field today, an arrow to the suggestion."""
    priced = any(p.today_cost or (p.suggested_cost or 0) for p in points)

    def x(cost: float | None, calls: float | None) -> float:
        return (cost or 0.0) * 1000 if priced else (calls or 0.0)

    for i, p in enumerate(points):
        x0, y0 = x(p.today_cost, p.today_calls), p.today_fill
        ax.plot([x0], [y0], "o", color="tab:blue")
        ax.annotate(f"{p.field} ({p.today_order})", (x0, y0), xytext=(4, 6 + 9 * (i % 3)),
                    textcoords="offset points", fontsize="x-small")  # fmt: skip
        if p.suggested_fill is not None:
            x1, y1 = x(p.suggested_cost, p.suggested_calls), p.suggested_fill
            ax.annotate(
                "", (x1, y1), (x0, y0), arrowprops={"arrowstyle": "->", "color": "tab:green"}
            )
            ax.plot([x1], [y1], "s", color="tab:green")
            ax.annotate(p.suggested_order or "", (x1, y1), xytext=(4, -12 - 9 * (i % 3)),
                        textcoords="offset points", fontsize="x-small", color="tab:green")
    ax.set_xlabel("cost per 1,000 tracks (USD)" if priced else "provider calls per track")
    ax.set_ylabel("fill rate")
    ax.set_ylim(0, 1.15)  # room for the labels above a full field
    ax.set_title("Per field: today's waterfall (dot) -> suggested (square), simulated")
    if not points:
        ax.text(0.5, 0.5, "no run in the window asked providers", ha="center",
                transform=ax.transAxes)  # fmt: skip
