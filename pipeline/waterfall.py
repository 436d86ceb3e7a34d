"""The configuration-driven provider waterfall, as pure functions.

The configuration lives in ``metadata_enrichment_config`` (priority 1..4 provider + confidence per
field, ``min_acceptable_confidence``, ``waterfall_mode``) and ``enrichment_providers`` (enabled,
health). A :class:`Plan` is built from a *snapshot* of those rows, the same snapshot stored on the
pipeline run, so a replay with a historical run's snapshot resolves exactly as that run did.

Resolution rule for one field (documented in README "How a value is chosen"):

1. the first provider in priority order whose value's confidence meets *its* slot threshold wins;
2. otherwise the most confident value at or above ``min_acceptable_confidence`` wins, marked as a
   fallback (so ``spotify_id`` at 0.99 is accepted although its slot demands 1.00);
3. otherwise the field stays empty.

Modes: ``sequential`` asks the next provider only while the field is unmet (fewest paid calls);
``parallel`` asks every provider of the field in the first round (lowest latency). A provider is
always asked for every plan field it serves at once: one call answers them all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field
from decimal import Decimal
from typing import Any, Literal

__all__ = [
    "FieldRule",
    "Outcome",
    "Plan",
    "Slot",
    "Winner",
    "next_lookups",
    "pick_winner",
    "plan_from_snapshot",
]

Mode = Literal["sequential", "parallel"]
UNHEALTHY = frozenset({"down"})


@dataclass(frozen=True)
class Slot:
    """One priority slot of a field's waterfall."""

    priority: int
    provider: str
    min_confidence: float


@dataclass(frozen=True)
class FieldRule:
    """A field's waterfall: ordered slots, mode and acceptance floor."""

    field: str
    slots: tuple[Slot, ...]
    mode: Mode = "sequential"
    min_acceptable: float = 0.5
    required_for_gold: bool = False

    def providers(self) -> list[str]:
        return [s.provider for s in self.slots]


@dataclass(frozen=True)
class Plan:
    """The waterfall of every enabled field, minus disabled or unhealthy providers."""

    rules: Mapping[str, FieldRule]
    excluded: frozenset[str] = frozenset()

    def fields_for(self, provider: str, only: Iterable[str] | None = None) -> list[str]:
        """Every plan field this provider serves (restricted to ``only`` when given)."""
        wanted = set(only) if only is not None else None
        return sorted(
            f
            for f, rule in self.rules.items()
            if provider in rule.providers() and (wanted is None or f in wanted)
        )

    def required_fields(self) -> list[str]:
        return sorted(f for f, r in self.rules.items() if r.required_for_gold)


@dataclass(frozen=True)
class Outcome:
    """What one provider answered for one field (from ``enrichment_transformations``)."""

    provider: str
    field: str
    value: Any
    confidence: float | None
    success: bool
    transformation_id: Any = None


@dataclass(frozen=True)
class Winner:
    """The value chosen for a field and why."""

    field: str
    outcome: Outcome
    slot: Slot | None
    reason: str
    fallback: bool = False
    considered: tuple[Outcome, ...] = dc_field(default_factory=tuple)


def _f(value: Any, default: float) -> float:
    if value is None:
        return default
    return float(Decimal(str(value)))


def plan_from_snapshot(
    waterfall: Sequence[Mapping[str, Any]],
    providers: Sequence[Mapping[str, Any]] | Mapping[str, Mapping[str, Any]],
    exclude: Iterable[str] = (),
) -> Plan:
    """Build a plan from config rows and provider rows (live or from a run snapshot).

    Mirrors SQL ``get_provider_priority``: disabled config rows are skipped, empty slots skipped,
    providers that are disabled or ``down`` (or explicitly excluded) dropped.
    """
    if isinstance(providers, Mapping):
        by_name = {str(k): v for k, v in providers.items()}
    else:
        by_name = {str(p["provider_name"]): p for p in providers}
    excluded = set(exclude)
    for name, row in by_name.items():
        if not row.get("enabled", True) or row.get("health_status") in UNHEALTHY:
            excluded.add(name)
    rules: dict[str, FieldRule] = {}
    for row in waterfall:
        if not row.get("enabled", True):
            continue
        slots = []
        for n in range(1, 5):
            provider = row.get(f"priority_{n}_provider")
            if not provider or provider in excluded:
                continue
            slots.append(Slot(n, str(provider), _f(row.get(f"priority_{n}_confidence"), 0.0)))
        mode = row.get("waterfall_mode") or "sequential"
        rules[str(row["metadata_field"])] = FieldRule(
            field=str(row["metadata_field"]),
            slots=tuple(slots),
            mode="parallel" if mode == "parallel" else "sequential",
            min_acceptable=_f(row.get("min_acceptable_confidence"), 0.5),
            required_for_gold=bool(row.get("required_for_gold", False)),
        )
    return Plan(rules=rules, excluded=frozenset(excluded))


def _usable(o: Outcome) -> bool:
    return o.success and o.value is not None and o.confidence is not None


def pick_winner(rule: FieldRule, outcomes: Iterable[Outcome]) -> Winner | None:
    """Resolve one field from every provider outcome for it (see module docstring)."""
    mine = tuple(o for o in outcomes if o.field == rule.field)
    by_provider: dict[str, Outcome] = {}
    for o in mine:
        # Several answers from one provider (a retried lookup): keep the most confident.
        best = by_provider.get(o.provider)
        if _usable(o) and (best is None or (o.confidence or 0) > (best.confidence or 0)):
            by_provider[o.provider] = o
    for slot in rule.slots:
        answer = by_provider.get(slot.provider)
        if answer is not None and (answer.confidence or 0.0) >= slot.min_confidence:
            reason = (
                f"priority {slot.priority} {slot.provider} met its threshold "
                f"({answer.confidence:.2f} >= {slot.min_confidence:.2f})"
            )
            return Winner(rule.field, answer, slot, reason, considered=mine)
    ranked = sorted(
        (o for o in by_provider.values() if (o.confidence or 0.0) >= rule.min_acceptable),
        key=lambda o: (-(o.confidence or 0.0), rule.providers().index(o.provider)),
    )
    if ranked:
        best_o = ranked[0]
        best_slot = next((s for s in rule.slots if s.provider == best_o.provider), None)
        reason = (
            f"no provider met its slot threshold; {best_o.provider} was the most confident "
            f"({best_o.confidence:.2f} >= min_acceptable {rule.min_acceptable:.2f})"
        )
        return Winner(rule.field, best_o, best_slot, reason, fallback=True, considered=mine)
    return None


def _strictly_met(rule: FieldRule, outcomes: Sequence[Outcome]) -> bool:
    w = pick_winner(rule, outcomes)
    return w is not None and not w.fallback


def next_lookups(
    plan: Plan,
    asked: Iterable[str],
    outcomes: Sequence[Outcome],
    fields: Iterable[str] | None = None,
) -> dict[str, list[str]]:
    """Which providers to ask next, each with every plan field it serves.

    ``asked`` are providers already asked for this record (answered or failed). Returns an empty
    mapping when the record is ready to merge.
    """
    done = set(asked)
    wanted = set(fields) if fields is not None else set(plan.rules)
    needed: set[str] = set()
    for name in wanted:
        rule = plan.rules.get(name)
        if rule is None:
            continue
        if rule.mode == "parallel":
            needed.update(p for p in rule.providers() if p not in done)
        elif not _strictly_met(rule, outcomes):
            nxt = next((p for p in rule.providers() if p not in done), None)
            if nxt is not None:
                needed.add(nxt)
    return {p: plan.fields_for(p, wanted) for p in sorted(needed)}
