"""Run a proposed waterfall over stored answers: the live planning and resolution code, no calls.

For each track the rounds are planned by :func:`pipeline.waterfall.next_lookups` (the function
the live fan-in calls), each planned lookup is answered from history, and the fields are
resolved by :func:`pipeline.merge.resolve_fields` (the function the live merge calls). So a
simulation of the configuration a run used repeats that run exactly: same lookups, same calls,
same values. Nothing is written.

A planned lookup is answered, in order of preference, by:

1. the stored lookup of that provider, when it was made with the same query for the same
   fields (its outcomes and calls as recorded);
2. the provider's own code run on that lookup's stored exchanges with the planned query and
   fields (:mod:`pipeline.whatif.stored`), when every request it makes was stored. Fewer fields
   can mean fewer requests (Spotify asks ``/artists/{id}`` only for genre), so the calls are
   the stored exchanges the code actually used;
3. nothing: the answer is *unknown*. The lookup is counted (``unknown_lookups``), the waterfall
   goes on as if it had answered nothing, and every field whose choice could depend on it is
   reported unknown for that track instead of filled, empty or changed. An unknown answer that
   could have carried an ISRC or a provider id makes every later round's lookup of the track
   unknown too (their queries learn from it).
"""

from __future__ import annotations

import json
import operator
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from dataclasses import field as dc_field
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from db.bulk import json_text
from pipeline.lookups.inputs import with_learned_ids
from pipeline.merge import resolve_fields
from pipeline.waterfall import Outcome, Plan, next_lookups
from pipeline.whatif.agree import consensus_agrees
from pipeline.whatif.history import TrackHistory
from pipeline.whatif.stored import StoredExchanges, reask

__all__ = ["FieldFigures", "Simulation", "simulate"]

MAX_EXAMPLES = 5


@dataclass
class FieldFigures:
    """One field's simulated figures next to what history did for the same tracks."""

    field: str
    mode: str
    order: list[str]
    thresholds: list[float]
    tracks: int = 0
    filled: int = 0
    unknown: int = 0
    history_filled: int = 0
    changed: int = 0
    examples: list[dict[str, Any]] = dc_field(default_factory=list)
    calls: float = 0.0
    cost_usd: float = 0.0
    history_calls: float = 0.0
    history_cost_usd: float = 0.0
    compared: int = 0
    agreed: int = 0

    @property
    def fill_rate(self) -> float:
        return self.filled / self.tracks if self.tracks else 0.0

    @property
    def history_fill_rate(self) -> float:
        return self.history_filled / self.tracks if self.tracks else 0.0

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.compared if self.compared else None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out |= {
            "fill_rate": round(self.fill_rate, 4),
            "fill_rate_if_unknown_filled": round(
                (self.filled + self.unknown) / self.tracks if self.tracks else 0.0, 4
            ),
            "history_fill_rate": round(self.history_fill_rate, 4),
            "agreement": None if self.agreement is None else round(self.agreement, 4),
            "calls": round(self.calls, 3),
            "cost_usd": round(self.cost_usd, 6),
            "history_calls": round(self.history_calls, 3),
            "history_cost_usd": round(self.history_cost_usd, 6),
            "saved_calls": round(self.history_calls - self.calls, 3),
            "saved_cost_usd": round(self.history_cost_usd - self.cost_usd, 6),
        }
        return out


@dataclass
class Simulation:
    """A whole proposal over a selection."""

    tracks: int = 0
    seconds: float = 0.0
    calls: int = 0
    cost_usd: Decimal = Decimal(0)
    history_calls: int = 0
    history_cost_usd: Decimal = Decimal(0)
    lookups: int = 0
    reasked_lookups: int = 0
    unknown_lookups: int = 0
    tracks_with_unknown: int = 0
    unknown_examples: list[str] = dc_field(default_factory=list)
    fields: dict[str, FieldFigures] = dc_field(default_factory=dict)
    values: dict[str, dict[str, Any]] = dc_field(default_factory=dict)  # keep_values=True only

    @property
    def tracks_per_s(self) -> float:
        return self.tracks / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "tracks": self.tracks,
            "seconds": round(self.seconds, 3),
            "tracks_per_s": round(self.tracks_per_s, 1),
            "calls": self.calls,
            "cost_usd": float(self.cost_usd),
            "history_calls": self.history_calls,
            "history_cost_usd": float(self.history_cost_usd),
            "saved_calls": self.history_calls - self.calls,
            "saved_cost_usd": float(self.history_cost_usd - self.cost_usd),
            "lookups": self.lookups,
            "reasked_lookups": self.reasked_lookups,
            "unknown_lookups": self.unknown_lookups,
            "tracks_with_unknown": self.tracks_with_unknown,
            "unknown_examples": self.unknown_examples,
            "fields": {f: ff.as_dict() for f, ff in sorted(self.fields.items())},
        }


def _json(value: Any) -> Any:
    """A value as the merge transformation stores it (JSON), so it compares with history."""
    if hasattr(value, "isoformat"):
        value = value.isoformat()
    return json.loads(json_text(value))


@dataclass
class _Ctx:
    session: Session | None
    exchanges: StoredExchanges | None
    prices: Mapping[str, Decimal]
    agree_cache: dict[tuple[str, str, str, str], bool | None] = dc_field(default_factory=dict)
    reasked: dict[tuple[str, str, str, tuple[str, ...]], Any] = dc_field(default_factory=dict)


def _answer(
    ctx: _Ctx, track: TrackHistory, provider: str, fields: list[str], query: Any
) -> tuple[bool, list[Outcome], int, tuple[float, int], str, bool]:
    """(known, outcomes, calls, history order, why unknown, re-asked) of one planned lookup."""
    a = track.answers.get(provider)
    if a is not None and a.query == query and set(fields) == a.fields:
        return True, [o for o in a.outcomes if o.field in fields], a.calls, a.seq, "", False
    if ctx.session is None or ctx.exchanges is None:
        why = f"{provider} was never asked" if a is None else f"{provider} asked otherwise"
        return False, [], 0, (0.0, 0), why, False
    source = (a.run_id, a.bronze_id) if a is not None else None
    key = (track.bronze_id, provider, repr(query), tuple(sorted(fields)))
    r = ctx.reasked.get(key)
    if r is None:
        r = ctx.reasked[key] = reask(
            ctx.session, ctx.exchanges, provider, query, fields, source,
            a.outcomes if a is not None else (),
        )  # fmt: skip
    seq = a.seq if a is not None else (float("inf"), 10_000)
    return r.known, r.outcomes, r.calls, seq, r.why, True


_sort_key = operator.itemgetter(0, 1)  # (history order, arrival): never the Outcome itself


def simulate(
    plan: Plan,
    prices: Mapping[str, Decimal],
    tracks: Iterable[TrackHistory],
    *,
    session: Session | None = None,
    keep_values: bool = False,
    cache: dict[str, Any] | None = None,
) -> Simulation:
    """Simulate ``plan`` over the tracks' stored answers (see module docstring).

    ``session`` lets a lookup asked with a new query be re-derived from stored exchanges;
    without it such a lookup is unknown. ``prices``: cost per call by provider. ``cache``: pass
    the same dict to simulations of the same tracks (a search) to re-derive each answer once.
    """
    started = time.perf_counter()
    ctx = _Ctx(session, StoredExchanges(session) if session is not None else None, prices)
    if cache is not None:
        ctx = cache.setdefault("ctx", ctx)
        ctx.prices = prices
    sim = Simulation()
    figures = {
        name: FieldFigures(
            name,
            rule.mode,
            rule.providers(),
            [s.min_confidence for s in rule.slots],
        )
        for name, rule in plan.rules.items()
    }
    sim.fields = figures
    for track in tracks:
        sim.tracks += 1
        _one(ctx, plan, track, sim, keep_values)
    sim.seconds = time.perf_counter() - started
    return sim


def _one(ctx: _Ctx, plan: Plan, track: TrackHistory, sim: Simulation, keep: bool) -> None:
    figures = sim.fields
    for lk in track.baseline_lookups:
        sim.history_calls += lk.calls
        sim.history_cost_usd += lk.cost
        share = 1 / max(len(lk.fields), 1)
        for f in lk.fields:
            if f in figures:
                figures[f].history_calls += lk.calls * share
                figures[f].history_cost_usd += float(lk.cost) * share
    asked: list[str] = []
    gathered: list[tuple[tuple[float, int], int, Outcome]] = []
    unknown: set[str] = set()
    wanted = {} if track.unidentified else next_lookups(plan, [], [])
    rnd = 1
    taint: str | None = None  # an unknown earlier answer that could have taught an id
    while wanted and rnd <= 20:
        earlier = [o for _, _, o in sorted(gathered, key=_sort_key)]
        round_taint = None
        for provider, fields in wanted.items():
            query = with_learned_ids(track.query, earlier)
            if taint is not None:
                # This round's queries learn ISRC and ids from earlier rounds; one of those
                # answers is unknown, so the query itself is, and so is the answer.
                outs: list[Outcome] = []
                known, calls, seq, reasked = False, 0, (0.0, 0), False
                why = f"{provider}'s query depends on the unknown answer of {taint}"
            else:
                known, outs, calls, seq, why, reasked = _answer(
                    ctx, track, provider, fields, query
                )
            if not known and any(f == "isrc" or f.endswith("_id") for f in fields):
                round_taint = round_taint or provider
            sim.lookups += 1
            sim.reasked_lookups += reasked
            asked.append(provider)
            if not known:
                unknown.add(provider)
                sim.unknown_lookups += 1
                if len(sim.unknown_examples) < MAX_EXAMPLES:
                    sim.unknown_examples.append(f"{track.label()}: {why}")
                continue
            cost = Decimal(calls) * ctx.prices.get(provider, Decimal(0))
            sim.calls += calls
            sim.cost_usd += cost
            share = 1 / max(len(fields), 1)
            for f in fields:
                if f in figures:
                    figures[f].calls += calls * share
                    figures[f].cost_usd += float(cost) * share
            gathered += [(seq, len(gathered) + i, o) for i, o in enumerate(outs)]
        taint = taint or round_taint
        outcomes = [o for _, _, o in sorted(gathered, key=_sort_key)]
        wanted = next_lookups(plan, asked, outcomes)
        rnd += 1
    if unknown:
        sim.tracks_with_unknown += 1
    outcomes = [o for _, _, o in sorted(gathered, key=_sort_key)]
    resolved = resolve_fields(plan, outcomes, plan.rules.keys(), "whatif")
    chosen: dict[str, Any] = {}
    for name, rule in plan.rules.items():
        ff = figures[name]
        ff.tracks += 1
        old = track.baseline_values.get(name)
        if old is not None:
            ff.history_filled += 1
        w = resolved.winners.get(name) if name in resolved.rules else None
        unknown_slots = [s.priority for s in rule.slots if s.provider in unknown]
        if unknown_slots and not (
            w is not None
            and not w.fallback
            and w.slot is not None
            and w.slot.priority < min(unknown_slots)
            and name != "bpm"  # BPM is reconciled against every other provider's reading
        ):
            ff.unknown += 1
            continue
        new = None
        if w is not None:
            new = _json(resolved.values.get(name, w.outcome.value))
            chosen[name] = new
            ff.filled += 1
            agrees = _agreement(ctx, track, name, w.outcome.provider, new)
            if agrees is not None:
                ff.compared += 1
                ff.agreed += agrees
        if new != old:
            ff.changed += 1
            if len(ff.examples) < MAX_EXAMPLES:
                ff.examples.append(
                    {
                        "track": track.label(),
                        "bronze_id": track.bronze_id,
                        "old": old,
                        "old_provider": track.baseline_providers.get(name),
                        "new": new,
                        "new_provider": w.outcome.provider if w else None,
                        "reason": w.reason if w else "no provider answered at or above "
                        f"min_acceptable {rule.min_acceptable:.2f}: the field stays empty",
                    }
                )
    if keep:
        sim.values[track.bronze_id] = chosen


def _agreement(ctx: _Ctx, track: TrackHistory, name: str, provider: str, value: Any) -> bool | None:
    """Does the chosen value agree with the consensus of every *other* provider's stored answer
    (all of history's answers, whichever the proposal asked: the evidence stays the same)?"""
    key = (track.bronze_id, name, provider, json_text(value))
    if key in ctx.agree_cache:
        return ctx.agree_cache[key]
    others = [
        o.value
        for p, a in track.answers.items()
        if p != provider
        for o in a.outcomes
        if o.field == name and o.success and o.value is not None
    ]
    found = consensus_agrees(name, value, others)
    ctx.agree_cache[key] = found
    return found
