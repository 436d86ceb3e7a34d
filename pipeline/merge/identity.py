"""Identity: which silver track a bronze row's values belong to, and the advisory locks that
serialise merges of one identity across workers (without a table lock).

The rule (:func:`find_silver`): ISRC first, then provider ids (:data:`IDENTITY_IDS` order), then
the normalised artist+title ``identity_key``. Merge locks and reads with it; identity-first
planning (``pipeline.identity_first``) reads with it, unlocked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.orm import Session

from pipeline.merge.resolve import TRACK_COLUMNS

__all__ = [
    "IDENTITY_IDS",
    "SilverTrack",
    "advisory_lock",
    "advisory_locks",
    "bronze_ids_of",
    "find_silver",
    "silver_ids_for_bronze",
]

IDENTITY_IDS = (
    "isrc",
    "spotify_id",
    "beatport_id",
    "musicbrainz_id",
    "deezer_id",
    "tidal_id",
    "discogs_id",
)


@dataclass(frozen=True, slots=True)
class SilverTrack:
    """A silver track as a merge reads it: its id, its :data:`TRACK_COLUMNS` values and the
    current confidence of each field with provenance."""

    id: str
    values: Mapping[str, Any]
    known_confidence: Mapping[str, float | None]


def advisory_lock(session: Session, key: str) -> None:
    """Take one transaction-scoped advisory lock (``track:<key>``, ``artist:<name>``, ...)."""
    session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": key})


def advisory_locks(session: Session, keys: Sequence[str]) -> None:
    """Take many advisory locks in ONE statement, in the order given (sorted by the caller, so
    concurrent batches can never deadlock on each other)."""
    if keys:
        session.execute(
            text(
                "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0))) "
                "FROM unnest(CAST(:keys AS text[])) AS k"
            ),
            {"keys": list(keys)},
        )


def find_silver(
    session: Session,
    ids: Mapping[str, object],
    ikey: str,
    *,
    silver_id: str | UUID | None = None,
    lock: bool = True,
) -> SilverTrack | None:
    """The silver track these ids or this identity key belong to (ISRC first, then provider
    ids, then the key, then a name the track was sighted under: ``silver_track_aliases``).
    ``silver_id``: the track identity-first matched this job to (issue 17)
    comes first. ``lock=False``: read only (planning, no write follows)."""
    # A name sighted before and resolved to a track with another key (020): after the key.
    alias = "id = (SELECT a.track_id FROM silver_track_aliases a WHERE a.identity_key = :ikey)"
    conditions = ["identity_key = :ikey", alias]
    order = ["WHEN identity_key = :ikey THEN 9", f"WHEN {alias} THEN 10"]
    params: dict[str, Any] = {"ikey": ikey}
    if silver_id is not None:
        conditions.append("id = CAST(:reuse_silver AS uuid)")
        order.insert(0, "WHEN id = CAST(:reuse_silver AS uuid) THEN -1")
        params["reuse_silver"] = str(silver_id)
    for rank, col in enumerate(IDENTITY_IDS):
        if ids.get(col):
            conditions.append(f"{col} = :{col}")
            order.append(f"WHEN {col} = :{col} THEN {rank}")
            params[col] = ids[col]
    # The field confidences come with the track: one round trip per merged job fewer.
    sql = (
        "SELECT s.*, (SELECT jsonb_object_agg(fp.metadata_field, fp.current_confidence) "
        "FROM field_provenance fp WHERE fp.silver_track_id = s.id) AS known_confidence "
        f"FROM silver_enriched_tracks s WHERE {' OR '.join(conditions)} "
        f"ORDER BY CASE {' '.join(order)} ELSE 11 END LIMIT 1"
        + (" FOR NO KEY UPDATE OF s" if lock else "")
    )
    row = session.execute(text(sql), params).first()
    if row is None:
        return None
    m = row._mapping
    return SilverTrack(
        id=str(m["id"]),
        values={c: m[c] for c in TRACK_COLUMNS},
        known_confidence={
            k: None if v is None else float(v) for k, v in (m["known_confidence"] or {}).items()
        },
    )


def silver_ids_for_bronze(session: Session, bronze_ids: list[UUID | str]) -> list[str]:
    """Silver tracks built from these bronze rows (their first or a later sighting)."""
    rows = session.execute(
        text(
            "SELECT id FROM silver_enriched_tracks WHERE bronze_id = ANY(CAST(:ids AS uuid[])) "
            "UNION SELECT silver_id FROM silver_track_sightings "
            "WHERE bronze_id = ANY(CAST(:ids AS uuid[]))"
        ),
        {"ids": [str(b) for b in bronze_ids]},
    )
    return [str(r[0]) for r in rows]


def bronze_ids_of(session: Session, silver_id: str) -> list[str] | None:
    """The bronze rows silver track ``silver_id`` was built from: its first (``bronze_id``),
    then its later sightings (``silver_track_sightings``, 022); None when there is no such
    track. The inverse of :func:`silver_ids_for_bronze`."""
    row = session.execute(
        text(
            "SELECT bronze_id, ARRAY(SELECT x.bronze_id FROM silver_track_sightings x "
            "WHERE x.silver_id = t.id ORDER BY x.linked_at, x.bronze_id) "
            "FROM silver_enriched_tracks t WHERE id = :id"
        ),
        {"id": silver_id},
    ).first()
    if row is None:
        return None
    return [str(b) for b in [row[0], *row[1]] if b]
