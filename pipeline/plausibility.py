"""What merge refuses or rescues beyond the waterfall's thresholds (issue 14), pure.

* ``without_placeholders``: an artist or label answer that is a placeholder ("Various Artists",
  "Not On Label", "[unknown]") is no answer, even one stored before the clients refused them.
* ``plausible_bpm_winner``: when no BPM met the waterfall (one provider answered, its reading
  doubted under the floor), its reading is kept at its own lower confidence, with a warning,
  when the tempo is plausible for the track's genre, rather than leaving the field empty.
"""

from __future__ import annotations

from pipeline.normalise.bpm import DJ_TEMPO, fold_to_genre, plausible_for
from pipeline.normalise.placeholders import is_placeholder
from pipeline.waterfall import FieldRule, Outcome, Winner

__all__ = ["RESCUE_MIN_CONFIDENCE", "genres_of", "plausible_bpm_winner", "without_placeholders"]

# The least a kept BPM may carry: a matched candidate (>= 0.5, pipeline.matching) whose reading
# was doubted (x 0.7, providers.contract). Anything lower was never a match.
RESCUE_MIN_CONFIDENCE = 0.35

# Fields whose value is a name: a placeholder ("Various Artists", "Not On Label") is no answer.
_NAME_FIELDS = frozenset({"artist_name", "label"})


def without_placeholders(outcomes: list[Outcome]) -> list[Outcome]:
    """Answers recorded before clients refused placeholders (stored, or replayed) never win."""
    return [o for o in outcomes if not (o.field in _NAME_FIELDS and is_placeholder(o.value))]


def genres_of(winner: Winner | None) -> list[str] | None:
    value = winner.outcome.value if winner is not None else None
    return [str(g) for g in value] if isinstance(value, list) else None


def plausible_bpm_winner(
    rule: FieldRule, outcomes: list[Outcome], genres: list[str] | None
) -> tuple[Winner, str] | None:
    """No BPM met the waterfall: keep the most confident reading anyway when its tempo is
    plausible (its genre's range, or its half/double; without a genre the DJ range 70-180),
    at its own, lower confidence and with a warning (issue 14), rather than leave it empty."""
    readings = [
        o
        for o in outcomes
        if o.field == "bpm"
        and o.success
        and isinstance(o.value, int | float)
        and not isinstance(o.value, bool)
        and o.value > 0
        and (o.confidence or 0.0) >= RESCUE_MIN_CONFIDENCE
    ]
    if not readings:
        return None
    order = rule.providers()
    # Most confident first; a tie goes to the provider earlier in the waterfall.
    rank = {p: -i for i, p in enumerate(order)}
    best = max(readings, key=lambda o: (o.confidence or 0.0, rank.get(o.provider, -99)))
    value, note = fold_to_genre(best.value, genres)
    judged = plausible_for(value, genres)
    if judged is None:
        judged = DJ_TEMPO[0] <= value <= DJ_TEMPO[1]
    if not judged:
        return None
    slot = next((s for s in rule.slots if s.provider == best.provider), None)
    others = len({o.provider for o in readings}) - 1
    reason = (
        f"no BPM met min_acceptable {rule.min_acceptable:.2f}; kept {best.provider}'s "
        f"{best.value:g} at {best.confidence:.2f} as plausible"
        + (f" ({note})" if note else "")
        + (f", {others} other reading(s) less confident" if others else ", the only reading")
    )
    folded = Outcome(best.provider, "bpm", value, best.confidence, True, best.transformation_id)
    return Winner("bpm", folded, slot, reason, fallback=True, considered=tuple(readings)), reason
