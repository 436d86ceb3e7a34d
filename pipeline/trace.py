"""Debug replay: why does a silver field hold the value it holds? (pure queries, no rendering)

:func:`trace_field` answers it for one silver track and field: the bronze rows it was built
from, and for every merge that wrote the field (the original run and any later replay), each
provider asked with its answer, confidence, the threshold its slot had in *that run's*
configuration snapshot, success or error, the winner and the rule that chose it, and whether the
value changed compared with the merge before.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from pipeline.matching import identity_key
from pipeline.merge.identity import bronze_ids_of

__all__ = ["Answer", "BronzeSource", "Decision", "Trace", "find_silver", "trace_field"]


@dataclass(frozen=True)
class BronzeSource:
    bronze_id: str
    source: str
    source_url: str
    scraped_at: dt.datetime
    primary: bool


@dataclass(frozen=True)
class Answer:
    """One provider asked for the field in one run."""

    provider: str
    value: Any
    confidence: float | None
    priority: int | None
    threshold: float | None
    success: bool
    error: str | None
    api_endpoint: str | None


@dataclass
class Decision:
    """One merge that wrote the field (a run, or a later replay)."""

    run_id: str
    run_type: str
    triggered_by: str | None
    snapshot_at: dt.datetime
    bronze_id: str | None
    winner: str
    value: Any
    confidence: float | None
    rules: dict[str, Any]
    decided_at: dt.datetime
    changed: bool
    answers: list[Answer] = dc_field(default_factory=list)


@dataclass
class Trace:
    silver_id: str
    artist_name: str | None
    track_title: str | None
    field: str
    current_value: Any
    current_provider: str | None
    current_confidence: float | None
    sources: list[BronzeSource] = dc_field(default_factory=list)
    decisions: list[Decision] = dc_field(default_factory=list)


def find_silver(session: Session, query: str) -> list[str]:
    """Silver ids for ``"<artist> - <title>"`` (identity key first, then a loose match)."""
    artist, sep, title = query.partition(" - ")
    if sep:
        ids = [
            str(r[0])
            for r in session.execute(
                text("SELECT id FROM silver_enriched_tracks WHERE identity_key = :k"),
                {"k": identity_key(artist, title)},
            )
        ]
        if ids:
            return ids
    like = f"%{(title if sep else query).strip()}%"
    who = f"%{artist.strip()}%" if sep else "%"
    return [
        str(r[0])
        for r in session.execute(
            text(
                "SELECT id FROM silver_enriched_tracks WHERE track_title ILIKE :t "
                "AND artist_name ILIKE :a ORDER BY updated_at DESC LIMIT 20"
            ),
            {"t": like, "a": who},
        )
    ]


def _f(v: Any) -> float | None:
    return None if v is None else float(v)


def _slots(snapshot: dict[str, Any] | None, fld: str) -> dict[str, tuple[int, float | None]]:
    row = (snapshot or {}).get(fld) or {}
    out: dict[str, tuple[int, float | None]] = {}
    for n in range(1, 5):
        p = row.get(f"priority_{n}_provider")
        if p:
            out[str(p)] = (n, _f(row.get(f"priority_{n}_confidence")))
    return out


def trace_field(session: Session, silver_id: str, fld: str) -> Trace:
    """Everything that explains ``fld`` of silver track ``silver_id`` (LookupError if unknown)."""
    track = session.execute(
        text(
            "SELECT id, artist_name, track_title, bronze_id FROM silver_enriched_tracks "
            "WHERE id = :id"
        ),
        {"id": silver_id},
    ).first()
    if track is None:
        raise LookupError(f"no silver track {silver_id}")
    prov = session.execute(
        text(
            "SELECT current_value, current_provider, current_confidence FROM field_provenance "
            "WHERE silver_track_id = :id AND metadata_field = :f"
        ),
        {"id": silver_id, "f": fld},
    ).first()
    trace = Trace(
        silver_id=str(track.id),
        artist_name=track.artist_name,
        track_title=track.track_title,
        field=fld,
        current_value=prov.current_value if prov else None,
        current_provider=prov.current_provider if prov else None,
        current_confidence=_f(prov.current_confidence) if prov else None,
    )
    for r in session.execute(
        text(
            "SELECT id, source, source_url, scraped_at FROM bronze_scraped_tracks "
            "WHERE id = ANY(CAST(:ids AS uuid[])) ORDER BY scraped_at"
        ),
        {"ids": bronze_ids_of(session, silver_id) or []},
    ):
        trace.sources.append(
            BronzeSource(str(r.id), r.source, r.source_url, r.scraped_at, r.id == track.bronze_id)
        )
    merges = session.execute(
        text(
            """
            SELECT t.run_id, t.bronze_id, t.provider_used, t.output_value, t.provider_confidence,
                   t.transformation_rules, t.created_at, r.run_type, r.triggered_by,
                   r.started_at, r.waterfall_config_snapshot
            FROM enrichment_transformations t JOIN enrichment_pipeline_runs r ON r.id = t.run_id
            LEFT JOIN field_provenance fp
              ON fp.silver_track_id = t.silver_id AND fp.metadata_field = t.metadata_field
            WHERE t.silver_id = :id AND t.metadata_field = :f AND t.transformation_type = 'merge'
            -- The provenance chain is appended in merge order; timestamps can tie (one
            -- transaction) so they only break ties for merges the chain does not list.
            ORDER BY array_position(fp.transformation_chain, t.id) NULLS LAST, t.created_at, t.id
            """
        ),
        {"id": silver_id, "f": fld},
    ).all()
    first = True
    previous: Any = None
    for m in merges:
        slots = _slots(m.waterfall_config_snapshot, fld)
        decision = Decision(
            run_id=str(m.run_id),
            run_type=m.run_type,
            triggered_by=m.triggered_by,
            snapshot_at=m.started_at,
            bronze_id=str(m.bronze_id) if m.bronze_id else None,
            winner=m.provider_used,
            value=m.output_value,
            confidence=_f(m.provider_confidence),
            rules=dict(m.transformation_rules or {}),
            decided_at=m.created_at,
            changed=not first and previous != m.output_value,
        )
        first, previous = False, m.output_value
        for a in session.execute(
            text(
                """
                SELECT provider_used, output_value, provider_confidence, success, error_message,
                       api_endpoint_called
                FROM enrichment_transformations
                WHERE run_id = :run AND bronze_id = :b AND metadata_field = :f
                  AND transformation_type = 'enrichment'
                ORDER BY created_at, id
                """
            ),
            {"run": m.run_id, "b": m.bronze_id, "f": fld},
        ):
            prio, threshold = slots.get(a.provider_used, (None, None))
            decision.answers.append(
                Answer(
                    provider=a.provider_used,
                    value=a.output_value,
                    confidence=_f(a.provider_confidence),
                    priority=prio,
                    threshold=threshold,
                    success=a.success,
                    error=a.error_message,
                    api_endpoint=a.api_endpoint_called,
                )
            )
        decision.answers.sort(key=lambda a: (a.priority or 99, a.provider))
        trace.decisions.append(decision)
    return trace
