"""Field resolution (pure: no database): each wanted field takes its waterfall winner, coerced to
its silver column type. Full merges, partial replays and the what-if simulation resolve here."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from pipeline.normalise.bpm import consensus_bpm, fold_to_genre, plausible_for, reconcile_bpm
from pipeline.normalise.dates import parse_release_date
from pipeline.plausibility import genres_of, plausible_bpm_winner, without_placeholders
from pipeline.waterfall import FieldRule, Outcome, Plan, Winner, pick_winner

__all__ = [
    "TRACK_COLUMNS",
    "Resolution",
    "reconcile_bpm_reading",
    "resolve_fields",
    "winner_rules",
]

#: Waterfall fields stored as silver columns; any other field goes to enrichment_metadata.extra.
TRACK_COLUMNS = (
    "artist_name",
    "track_title",
    "spotify_id",
    "isrc",
    "beatport_id",
    "musicbrainz_id",
    "deezer_id",
    "tidal_id",
    "discogs_id",
    "release_date",
    "duration_ms",
    "bpm",
    "key",
    "genre",
    "energy",
    "valence",
    "danceability",
)


@dataclass(frozen=True)
class Resolution:
    """Every asked field resolved through the waterfall (pure: no database)."""

    winners: dict[str, Winner]
    values: dict[str, Any]  # silver column values, coerced to their column types
    extra: dict[str, Any]  # winning values of fields that are not silver columns
    confidences: dict[str, float | None]
    rules: dict[str, dict[str, Any]]  # what each field's merge transformation records
    warnings: list[dict[str, str]]
    metadata: dict[str, Any]  # additions to enrichment_metadata (winners, fallbacks, extra)


def _column_value(name: str, value: Any) -> tuple[Any, dict[str, str]]:
    """Coerce a canonical provider value to its column type; extra facts go to metadata."""
    if value is None:
        return None, {}
    if name == "release_date":
        parsed = parse_release_date(value)
        return parsed.date, {"release_date_precision": parsed.precision}
    if name in ("bpm", "energy", "valence", "danceability"):
        return round(float(value), 2), {}
    if name == "duration_ms":
        return int(value), {}
    if name == "genre":
        return [str(v) for v in (value if isinstance(value, list) else [value])], {}
    return str(value), {}


def reconcile_bpm_reading(
    winner: Winner,
    outcomes: list[Outcome],
    min_confidence: float = 0.7,
    genres: list[str] | None = None,
) -> tuple[float, str | None]:
    """Fold the winning BPM onto the tempo the *other confident* providers agree on, when they
    all read it at half or double time. A doubtful reading (below ``min_confidence``, e.g. a
    half-time 70 from a provider whose confidence was lowered for that very reason) never moves
    a winner; a single disagreeing provider at equal confidence does not either (ties keep the
    winner, which the waterfall chose); nor does a consensus outside the track's genre tempo
    when the winner is inside it (a 75 BPM hip-hop track read at 150 elsewhere stays 75)."""
    value = float(winner.outcome.value)
    mine = winner.outcome.confidence or 0.0
    confident = [
        o
        for o in outcomes
        if o.field == "bpm"
        and o.success
        and o.provider != winner.outcome.provider
        and isinstance(o.value, int | float)
        and (o.confidence or 0.0) >= min_confidence
    ]
    others = [float(o.value) for o in confident]
    outvoted = len(others) >= 2 or any((o.confidence or 0.0) > mine for o in confident)
    if not outvoted or any(abs(value - o) / o < 0.03 for o in others):
        return value, None
    reference = consensus_bpm(others)
    if reference is None:
        return value, None
    fixed = reconcile_bpm(value, reference)
    if abs(fixed - value) < 0.01:
        return value, None
    if plausible_for(value, genres) and not plausible_for(fixed, genres):
        return value, None
    return fixed, (
        f"{winner.outcome.provider} read {value:g} BPM, a half/double-time reading of what the "
        f"other confident providers agree on ({reference:g}); stored {fixed:g}"
    )


def winner_rules(w: Winner, rule: FieldRule, config_run_id: str) -> dict[str, Any]:
    """What a merge transformation records about why ``w`` won (shown by ``songnodes trace``)."""
    return {
        "reason": w.reason,
        "fallback": w.fallback,
        "priority": w.slot.priority if w.slot else None,
        "threshold": w.slot.min_confidence if w.slot else None,
        "min_acceptable": rule.min_acceptable,
        "mode": rule.mode,
        "config_run_id": config_run_id,
    }


def resolve_fields(
    plan: Plan, outcomes: list[Outcome], wanted: Collection[str], run_id: str
) -> Resolution:
    """Each wanted field of the plan takes its waterfall winner (BPM folded onto the tempo the
    other confident providers agree on), coerced to its silver column type; a value that cannot
    be coerced is left out with a warning. Full merges and partial replays both resolve here."""
    outcomes = without_placeholders(outcomes)
    winners = {
        f: w
        for f, rule in plan.rules.items()
        if f in wanted and (w := pick_winner(rule, outcomes)) is not None
    }
    genres = genres_of(winners.get("genre"))
    rescued: str | None = None
    if "bpm" in wanted and "bpm" in plan.rules and "bpm" not in winners:
        kept = plausible_bpm_winner(plan.rules["bpm"], outcomes, genres)
        if kept is not None:
            winners["bpm"], rescued = kept
    values: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    confidences: dict[str, float | None] = {}
    metadata: dict[str, Any] = {"run_id": run_id, "extra": extra, "winners": {}}
    warnings: list[dict[str, str]] = []
    rules: dict[str, dict[str, Any]] = {}
    for name, w in winners.items():
        value = w.outcome.value
        rule_info = winner_rules(w, plan.rules[name], run_id)
        if name == "bpm" and rescued is not None:
            warnings.append({"field": "bpm", "warning": rescued})
            rule_info["plausible_single"] = rescued
        elif name == "bpm":
            min_acceptable = plan.rules[name].min_acceptable
            value, note = reconcile_bpm_reading(w, outcomes, min_acceptable, genres)
            if note:
                warnings.append({"field": "bpm", "warning": note})
                rule_info["reconciled"] = note
            value, genre_note = fold_to_genre(value, genres)
            if genre_note:
                warnings.append({"field": "bpm", "warning": genre_note})
                rule_info["genre_tempo"] = genre_note
        if w.fallback:
            # Accepted by design (min_acceptable_confidence); noted, not a quality warning.
            metadata.setdefault("fallbacks", {})[name] = w.reason
        if name in TRACK_COLUMNS:
            try:
                values[name], facts = _column_value(name, value)
            except (ValueError, TypeError) as exc:
                warnings.append({"field": name, "warning": f"value {value!r} rejected: {exc}"})
                continue
            metadata.update(facts)
        else:
            extra[name] = value
        confidences[name] = w.outcome.confidence
        metadata["winners"][name] = w.outcome.provider
        rules[name] = rule_info
    return Resolution(winners, values, extra, confidences, rules, warnings, metadata)
