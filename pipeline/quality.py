"""Quality score and validation status of a silver track.

score = 0.7 x mean confidence of the ``required_for_gold`` fields (a missing one counts 0)
      + 0.3 x share of the other enabled fields that have a value.
Status: ``needs_review`` when a required field is missing; else ``valid`` at score >= 0.7 with no
warnings, ``warning`` at score >= 0.4 (or with warnings), ``needs_review`` below. Gold takes
``valid`` and ``warning`` tracks whose required fields are all present.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["GOLD_STATUSES", "Quality", "assess"]

GOLD_STATUSES = ("valid", "warning")


@dataclass(frozen=True)
class Quality:
    score: float
    status: str
    errors: list[dict[str, str]]


def assess(
    values: Mapping[str, Any],
    confidences: Mapping[str, float | None],
    required: list[str],
    optional: list[str],
    warnings: list[dict[str, str]],
) -> Quality:
    """Score a merged record (see module docstring)."""
    present = {f for f, v in values.items() if v not in (None, [], "")}
    errors = [
        {"field": f, "error": "required field has no accepted value"}
        for f in required
        if f not in present
    ]
    req = [float(confidences.get(f) or 0.0) if f in present else 0.0 for f in required]
    req_part = sum(req) / len(req) if req else 1.0
    opt_part = (sum(1 for f in optional if f in present) / len(optional)) if optional else 1.0
    score = round(min(1.0, max(0.0, 0.7 * req_part + 0.3 * opt_part)), 2)
    if errors:
        status = "needs_review"
    elif score >= 0.7 and not warnings:
        status = "valid"
    elif score >= 0.4:
        status = "warning"
    else:
        status = "needs_review"
    return Quality(score, status, errors)
