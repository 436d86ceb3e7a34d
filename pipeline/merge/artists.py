"""The one writer of silver artists (``silver_enriched_artists``) and of track credits
(``silver_track_artists``): one artist per normalised name or alias.

Merges credit a track's artists, playlists their DJ, ingest and the sweeper turn a scraped
artist into silver (:func:`artist_to_silver`); all of them write through here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from db.bulk import Bulk
from pipeline.matching import artist_key, normalise_name
from pipeline.merge.identity import advisory_lock
from pipeline.normalise.text import clean_scraped

__all__ = ["artist_to_silver", "credit_artists", "prefetch_artists", "upsert_artist"]


def upsert_artist(
    session: Session,
    name: str,
    bronze_id: str | None = None,
    aliases: list[str] | None = None,
    *,
    locked: bool = False,
) -> str:
    """One silver artist per normalised name (or alias); returns its id. ``locked``: the caller
    already holds this artist's advisory lock (a merge batch takes them all up front)."""
    norm = artist_key(name)
    if not locked:
        advisory_lock(session, f"artist:{norm}")
    found = session.execute(
        text(
            # aliases @> ARRAY[n] (not n = ANY(aliases)): the GIN index of 008 serves it.
            "SELECT id FROM silver_enriched_artists WHERE normalized_name = :n "
            "OR aliases @> ARRAY[CAST(:n AS text)] ORDER BY created_at LIMIT 1"
        ),
        {"n": norm},
    ).scalar_one_or_none()
    alias_norms = sorted({normalise_name(a) for a in aliases or [] if normalise_name(a)} - {norm})
    if found is not None and bronze_id is None and not alias_norms:
        return str(found)  # nothing to add (a merge crediting a known artist)
    if found is not None:
        session.execute(
            text("""
                UPDATE silver_enriched_artists SET
                    bronze_ids = CASE WHEN CAST(:b AS uuid) IS NULL
                                        OR CAST(:b AS uuid) = ANY(bronze_ids)
                                      THEN bronze_ids ELSE bronze_ids || CAST(:b AS uuid) END,
                    aliases = (SELECT array_agg(DISTINCT a) FROM
                               unnest(coalesce(aliases, '{}') || CAST(:al AS text[])) a)
                WHERE id = :id"""),
            {"b": bronze_id, "al": alias_norms, "id": found},
        )
        return str(found)
    new_id = session.execute(
        text("""
            INSERT INTO silver_enriched_artists
                (bronze_ids, canonical_name, normalized_name, aliases, validation_status,
                 deduplication_strategy, enrichment_metadata)
            VALUES (CASE WHEN CAST(:b AS uuid) IS NULL THEN '{}'::uuid[]
                         ELSE ARRAY[CAST(:b AS uuid)] END,
                    :name, :n, :al, 'valid', 'normalized_name', '{}'::jsonb)
            ON CONFLICT (canonical_name) DO UPDATE SET updated_at = now()
            RETURNING id"""),
        {"b": bronze_id, "name": name, "n": norm, "al": alias_norms},
    ).scalar_one()
    return str(new_id)


def artist_to_silver(session: Session, bronze_artist_id: str) -> str:
    """A scraped artist goes straight to silver (ingest; the sweeper for one ingest missed):
    one row per normalised name or alias; returns its id."""
    row = session.execute(
        text("SELECT artist_name, aliases FROM bronze_scraped_artists WHERE id = :id"),
        {"id": bronze_artist_id},
    ).one()
    # bronze keeps the names as sent; silver gets them cleaned
    aliases = [a for a in (clean_scraped(x) for x in row.aliases or []) if a]
    name = clean_scraped(row.artist_name) or row.artist_name
    return upsert_artist(session, name, bronze_artist_id, aliases)


def prefetch_artists(session: Session, names: Sequence[str]) -> dict[str, str]:
    """normalised name -> id of the artists that already exist, for a whole batch in one query
    (the same match as :func:`upsert_artist`: name or alias, oldest first)."""
    norms = sorted({artist_key(n) for n in names})
    if not norms:
        return {}
    rows = session.execute(
        text(
            "SELECT DISTINCT ON (k.n) k.n, a.id::text FROM unnest(CAST(:n AS text[])) AS k(n) "
            "JOIN silver_enriched_artists a "
            "  ON a.normalized_name = k.n OR a.aliases @> ARRAY[k.n] "
            "ORDER BY k.n, a.created_at"
        ),
        {"n": norms},
    )
    return {n: i for n, i in rows}


_TRACK_ARTIST = Bulk.of(
    "INSERT INTO silver_track_artists (track_id, artist_id, position) "
    "SELECT r.t, r.a, r.p FROM {rows} ON CONFLICT DO NOTHING",
    [("t", "uuid"), ("a", "uuid"), ("p", "int")],
)


def credit_artists(session: Session, links: Sequence[Mapping[str, Any]]) -> None:
    """Credit artists on tracks in one statement: rows ``{"t": track, "a": artist, "p":
    position}``; a credit already there stays."""
    _TRACK_ARTIST.run(session, links)
