"""Proposed waterfall configurations: today's rows, edits to them, and the SQL that applies one.

A proposal is a set of ``metadata_enrichment_config`` rows (as dicts, the shape the run snapshot
stores, so :func:`pipeline.waterfall.plan_from_snapshot` builds its plan exactly as a run does).
It starts from today's table and replaces the rows of the fields it changes, from a file (JSON: a
list of rows or ``{field: row}``; CSV with the table's column names) or per-field options.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from pipeline.errors import PipelineError
from pipeline.waterfall import Plan, plan_from_snapshot

__all__ = [
    "ConfigError",
    "Proposal",
    "apply_sql",
    "edit_field",
    "load_rows",
    "today",
]

SLOTS = 4
_COLUMNS = (
    [f"priority_{n}_{k}" for n in range(1, SLOTS + 1) for k in ("provider", "confidence")]
    + ["waterfall_mode", "min_acceptable_confidence"]
)


class ConfigError(PipelineError, ValueError):
    """A proposal that cannot be simulated (unknown field or provider, bad threshold)."""


class Proposal:
    """Config rows by field plus provider rows; ``plan()`` and ``prices()`` for a simulation."""

    def __init__(self, rows: Mapping[str, Mapping[str, Any]], providers: Mapping[str, Any]):
        self.rows = {f: dict(r) for f, r in rows.items()}
        self.providers = {p: dict(r) for p, r in providers.items()}

    def plan(self) -> Plan:
        # Health is not configuration: a provider whose circuit happens to be open right now is
        # simulated as the configuration would use it once healthy (``enabled`` still counts).
        providers = {p: r | {"health_status": "healthy"} for p, r in self.providers.items()}
        return plan_from_snapshot(list(self.rows.values()), providers)

    def prices(self) -> dict[str, Decimal]:
        return {
            p: Decimal(str(r.get("cost_per_call_usd") or 0)) for p, r in self.providers.items()
        }

    def with_row(self, field: str, row: Mapping[str, Any]) -> Proposal:
        rows = dict(self.rows)
        rows[field] = dict(row)
        return Proposal(rows, self.providers)


def today(session: Session) -> Proposal:
    """Today's configuration, read exactly as ``start_pipeline_run`` snapshots it."""
    waterfall, providers = session.execute(
        text(
            "SELECT (SELECT coalesce(jsonb_object_agg(c.metadata_field, to_jsonb(c)), '{}') "
            "        FROM metadata_enrichment_config c WHERE c.enabled), "
            "       (SELECT coalesce(jsonb_object_agg(p.provider_name, to_jsonb(p)), '{}') "
            "        FROM enrichment_providers p)"
        )
    ).one()
    return Proposal(waterfall, providers)


def _check(proposal: Proposal, field: str, row: Mapping[str, Any]) -> None:
    if field not in proposal.rows:
        raise ConfigError(f"unknown field {field!r}; the waterfall has {sorted(proposal.rows)}")
    for n in range(1, SLOTS + 1):
        p = row.get(f"priority_{n}_provider")
        if p and p not in proposal.providers:
            raise ConfigError(f"{field}: unknown provider {p!r} in priority {n}")
        c = row.get(f"priority_{n}_confidence")
        if c is not None and not 0 <= float(c) <= 1:
            raise ConfigError(f"{field}: priority {n} threshold {c} is not in [0, 1]")
    mode = row.get("waterfall_mode")
    if mode not in (None, "sequential", "parallel"):
        raise ConfigError(f"{field}: waterfall_mode must be sequential or parallel, not {mode!r}")


def load_rows(proposal: Proposal, path: Path) -> Proposal:
    """Replace the rows of the fields the file gives (other columns of a row keep today's)."""
    try:
        if path.suffix.lower() == ".csv":
            with path.open(encoding="utf-8", newline="") as fh:
                raw: Any = [
                    {k: (v if v != "" else None) for k, v in r.items()} for r in csv.DictReader(fh)
                ]
        else:
            raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    items = list(raw.values()) if isinstance(raw, dict) else raw
    if not isinstance(items, list) or not all(isinstance(r, dict) for r in items):
        raise ConfigError(f"{path}: expected a list of metadata_enrichment_config rows")
    out = proposal
    for row in items:
        field = row.get("metadata_field")
        if not field:
            raise ConfigError(f"{path}: a row has no metadata_field")
        _check(out, field, row)
        merged = dict(out.rows[field])
        if any(k.startswith("priority_") for k in row):  # a row gives its whole order
            merged |= {k: None for k in _COLUMNS if k.startswith("priority_")}
        out = out.with_row(field, merged | {k: v for k, v in row.items() if k != "enabled"})
    return out


def edit_field(
    proposal: Proposal,
    field: str,
    *,
    order: Sequence[str] | None = None,
    thresholds: Sequence[float] | None = None,
    mode: str | None = None,
    min_acceptable: float | None = None,
) -> Proposal:
    """A proposal with one field's order / thresholds / mode / acceptance floor changed.

    Thresholds without an order apply to today's providers of the field; an order without
    thresholds keeps each provider's threshold from today's row (the field's floor for one
    that had no slot)."""
    if field not in proposal.rows:
        raise ConfigError(f"unknown field {field!r}; the waterfall has {sorted(proposal.rows)}")
    row = dict(proposal.rows[field])
    current = {
        row.get(f"priority_{n}_provider"): row.get(f"priority_{n}_confidence")
        for n in range(1, SLOTS + 1)
        if row.get(f"priority_{n}_provider")
    }
    providers = list(order) if order is not None else list(current)
    if len(providers) > SLOTS:
        raise ConfigError(f"{field}: at most {SLOTS} providers, got {len(providers)}")
    if thresholds is not None and len(thresholds) != len(providers):
        raise ConfigError(f"{field}: {len(providers)} providers but {len(thresholds)} thresholds")
    floor = min_acceptable if min_acceptable is not None else row.get("min_acceptable_confidence")
    for n in range(1, SLOTS + 1):
        p = providers[n - 1] if n <= len(providers) else None
        row[f"priority_{n}_provider"] = p
        if p is None:
            row[f"priority_{n}_confidence"] = None
        elif thresholds is not None:
            row[f"priority_{n}_confidence"] = float(thresholds[n - 1])
        else:
            row[f"priority_{n}_confidence"] = current.get(p, floor)
    if mode is not None:
        row["waterfall_mode"] = mode
    if min_acceptable is not None:
        row["min_acceptable_confidence"] = min_acceptable
    _check(proposal, field, row)
    return proposal.with_row(field, row)


def _lit(v: Any) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, int | float | Decimal):
        return f"{float(v):.2f}"
    return "'" + str(v).replace("'", "''") + "'"


def apply_sql(field: str, row: Mapping[str, Any], by: str = "songnodes waterfall suggest") -> str:
    """The UPDATE that makes ``row`` the field's configuration (what ``--apply`` runs)."""
    sets = [f"{c} = {_lit(row.get(c))}" for c in _COLUMNS if c != "waterfall_mode"]
    sets.append(f"waterfall_mode = {_lit(row.get('waterfall_mode') or 'sequential')}")
    sets += ["last_updated = now()", f"updated_by = {_lit(by)}"]
    return (
        "UPDATE metadata_enrichment_config SET " + ", ".join(sets)
        + f" WHERE metadata_field = {_lit(field)};"
    )  # fmt: skip
