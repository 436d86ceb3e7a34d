"""Search one field's provider orders, modes and thresholds for a cheaper waterfall.

Every candidate is *simulated* over the stored answers (:func:`pipeline.whatif.simulate`), whole
tracks at a time, because one field's order changes which providers are asked and so what the
other fields see. A candidate qualifies when, against today's configuration over the same
tracks:

* the field's fill rate and agreement with the other providers' consensus are at least today's;
* no other field fills fewer tracks;
* the simulation needed no unknown answer (a candidate history cannot judge is not offered);
* it makes fewer calls or costs less.

Qualifying candidates are ranked by cost, then calls, then fill rate and agreement. The search:
today's order made sequential and its prefixes, then every order of up to four of the field's
providers (the ones history holds answers from, most answers first), in both modes, at today's
thresholds; then, for the best few, each slot's
threshold over a small grid, one slot at a time. ``budget_s`` bounds it.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from pipeline.whatif.config import Proposal, apply_sql, edit_field
from pipeline.whatif.history import TrackHistory
from pipeline.whatif.simulate import Simulation, simulate

__all__ = ["Suggestion", "Suggestions", "suggest"]

THRESHOLDS = (0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.98, 1.0)


@dataclass
class Suggestion:
    field: str
    row: dict[str, Any]
    simulation: Simulation
    sql: str

    def summary(self) -> dict[str, Any]:
        ff = self.simulation.fields[self.field]
        return {
            "order": ff.order,
            "thresholds": ff.thresholds,
            "mode": ff.mode,
            "fill_rate": round(ff.fill_rate, 4),
            "agreement": None if ff.agreement is None else round(ff.agreement, 4),
            "calls": self.simulation.calls,
            "cost_usd": float(self.simulation.cost_usd),
            "field_calls": round(ff.calls, 3),
            "field_cost_usd": round(ff.cost_usd, 6),
            "sql": self.sql,
        }


@dataclass
class Suggestions:
    field: str
    today: Simulation
    best: list[Suggestion]
    evaluated: int
    seconds: float
    undo_sql: str

    def as_dict(self) -> dict[str, Any]:
        ff = self.today.fields[self.field]
        return {
            "field": self.field,
            "tracks": self.today.tracks,
            "evaluated": self.evaluated,
            "seconds": round(self.seconds, 2),
            "today": {
                "order": ff.order,
                "thresholds": ff.thresholds,
                "mode": ff.mode,
                "fill_rate": round(ff.fill_rate, 4),
                "agreement": None if ff.agreement is None else round(ff.agreement, 4),
                "calls": self.today.calls,
                "cost_usd": float(self.today.cost_usd),
                "unknown_lookups": self.today.unknown_lookups,
            },
            "undo_sql": self.undo_sql,
            "suggestions": [s.summary() for s in self.best],
        }


def _qualifies(field: str, today: Simulation, cand: Simulation) -> bool:
    t, c = today.fields[field], cand.fields[field]
    if cand.unknown_lookups or c.unknown:
        return False
    if c.filled < t.filled:
        return False
    if (c.agreement or 0.0) + 1e-9 < (t.agreement or 0.0):
        return False
    if any(cand.fields[f].filled < tf.filled for f, tf in today.fields.items()):
        return False
    return cand.cost_usd < today.cost_usd or cand.calls < today.calls


def _rank(field: str, s: Simulation) -> tuple[Any, ...]:
    ff = s.fields[field]
    return (s.cost_usd, s.calls, -ff.filled, -(ff.agreement or 0.0))


def _providers(field: str, base: Proposal, tracks: Sequence[TrackHistory]) -> list[str]:
    """The field's candidate providers: today's, and enabled providers serving the field that
    history holds answers from; most answers first, at most four."""
    counts: dict[str, int] = {}
    for t in tracks:
        for p, a in t.answers.items():
            if any(o.field == field and o.success for o in a.outcomes):
                counts[p] = counts.get(p, 0) + 1
    serving = {
        p
        for p, r in base.providers.items()
        if r.get("enabled", True) and field in (r.get("supported_fields") or [])
    }
    today = [r for r in base.plan().rules[field].providers()]
    ranked = sorted(set(counts) & serving | set(today), key=lambda p: (-counts.get(p, 0), p))
    return ranked[:4]


def suggest(
    session: Session | None,
    base: Proposal,
    tracks: Sequence[TrackHistory],
    field: str,
    *,
    top: int = 3,
    budget_s: float = 120.0,
) -> Suggestions:
    """The best ``top`` qualifying configurations of ``field`` (see module docstring)."""
    started = time.perf_counter()
    shared: dict[str, Any] = {}  # answers re-derived once for every candidate
    today = simulate(base.plan(), base.prices(), tracks, session=session, cache=shared)
    found: dict[str, Suggestion] = {}
    evaluated = 0

    def consider(p: Proposal) -> Simulation | None:
        nonlocal evaluated
        row = p.rows[field]
        sql = apply_sql(field, row)
        if sql in found or sql == apply_sql(field, base.rows[field]):
            return None
        evaluated += 1
        sim = simulate(p.plan(), p.prices(), tracks, session=session, cache=shared)
        if _qualifies(field, today, sim):
            found[sql] = Suggestion(field, row, sim, sql)
        return sim

    names = _providers(field, base, tracks)
    current = base.plan().rules[field].providers()
    # Today's order made sequential, and its prefixes, first: the likeliest savings, tried
    # before the budget can run out; then every order of up to four providers in both modes.
    orders: list[tuple[tuple[str, ...], str]] = [
        (tuple(current[:k]), "sequential") for k in range(len(current), 0, -1)
    ]
    for n in range(1, len(names) + 1):
        orders += [
            (o, m) for o in itertools.permutations(names, n) for m in ("sequential", "parallel")
        ]
    for order, mode in dict.fromkeys(orders):
        if time.perf_counter() - started > budget_s:
            break
        consider(edit_field(base, field, order=order, mode=mode))
    seeds = sorted(found.values(), key=lambda s: _rank(field, s.simulation))[:top]
    for seed in seeds:
        row = seed.row
        slots = [
            row[f"priority_{n}_provider"] for n in range(1, 5) if row.get(f"priority_{n}_provider")
        ]
        thresholds = [float(row[f"priority_{n}_confidence"]) for n in range(1, len(slots) + 1)]
        floor = float(row.get("min_acceptable_confidence") or 0)
        for slot in range(len(slots)):
            for value in THRESHOLDS:
                if value < floor or value == thresholds[slot]:
                    continue
                if time.perf_counter() - started > budget_s:
                    break
                trial = list(thresholds)
                trial[slot] = value
                mode = row["waterfall_mode"]
                consider(edit_field(base, field, order=slots, thresholds=trial, mode=mode))
    best = sorted(found.values(), key=lambda s: _rank(field, s.simulation))[:top]
    return Suggestions(
        field,
        today,
        best,
        evaluated,
        time.perf_counter() - started,
        apply_sql(field, base.rows[field], by="songnodes waterfall suggest (undo)"),
    )
