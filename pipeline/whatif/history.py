"""What the pipeline already knows: every provider's stored answer for a selection of tracks.

A what-if simulation never calls a provider. It reads, for each bronze track of the selection,
what each provider answered in earlier runs: the ``enrichment_lookups`` row (round, fields asked,
calls, cost, latency, status) and that lookup's ``enrichment_transformations`` outcomes, plus the
query the lookup was made with, rebuilt exactly as :func:`~pipeline.lookups.inputs.lookup_inputs`
built it (the bronze row, plus the ISRC and provider ids earlier rounds of the same job learned).
The query matters: an answer can be reused only for the request that produced it.

Stored replays (``replay_mode = 'stored'``) and partial jobs are left out (they asked nobody),
and so are jobs not merged yet (still open, or failed at the merge).
When several selected runs asked the same provider about the same bronze row, the newest
answer is used; the newest job of the row is the *baseline* ("what the run did").
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

import orjson
from sqlalchemy import text
from sqlalchemy.orm import Session

from pipeline.enrich import outcomes_by_job
from pipeline.lookups.inputs import query_from_bronze, with_learned_ids
from pipeline.matching import TrackQuery
from pipeline.tracklist import is_unidentified
from pipeline.waterfall import Outcome

__all__ = ["Answer", "Selection", "TrackHistory", "load_history"]


@dataclass(frozen=True)
class Selection:
    """Which tracks to simulate: the union of the given filters (all of them must hold)."""

    runs: int | None = None  # the last N runs that asked providers
    run_ids: tuple[str, ...] = ()
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    source: str | None = None
    setlist: str | None = None  # bronze_scraped_playlists.id


@dataclass
class Answer:
    """One provider's stored lookup for one bronze track."""

    provider: str
    job_id: str
    run_id: str
    bronze_id: str
    round: int
    fields: frozenset[str]
    status: str
    calls: int
    cost: Decimal
    latency_ms: int | None
    query: TrackQuery
    outcomes: list[Outcome] = field(default_factory=list)
    seq: tuple[float, int] = (0.0, 0)  # (run start, position in the job's outcomes): history order


@dataclass
class TrackHistory:
    """Everything stored about one bronze track of the selection."""

    bronze_id: str
    artist: str
    title: str
    source: str
    query: TrackQuery  # from the bronze row, before any learned id
    unidentified: bool
    baseline_run: str
    baseline_job: str
    baseline_values: dict[str, Any] = field(default_factory=dict)  # field -> merged value
    baseline_providers: dict[str, str] = field(default_factory=dict)
    baseline_lookups: list[Answer] = field(default_factory=list)
    answers: dict[str, Answer] = field(default_factory=dict)  # provider -> newest answer

    def label(self) -> str:
        return f"{self.artist} - {self.title}"


def _runs_clause(sel: Selection, params: dict[str, Any]) -> str:
    # Finished jobs only: an open job's lookups and merge are not all there yet.
    where = ["j.fields IS NULL", "j.replay_mode IS DISTINCT FROM 'stored'", "j.status = 'merged'"]
    if sel.run_ids:
        where.append("j.run_id = ANY(CAST(:run_ids AS uuid[]))")
        params["run_ids"] = list(sel.run_ids)
    if sel.runs is not None:
        where.append(
            "j.run_id IN (SELECT r2.id FROM enrichment_pipeline_runs r2 WHERE EXISTS ("
            "SELECT 1 FROM enrichment_jobs j2 WHERE j2.run_id = r2.id AND j2.fields IS NULL "
            "AND j2.replay_mode IS DISTINCT FROM 'stored') "
            "ORDER BY r2.started_at DESC LIMIT :nruns)"
        )
        params["nruns"] = sel.runs
    if sel.since is not None:
        where.append("r.started_at >= :since")
        params["since"] = sel.since
    if sel.until is not None:
        where.append("r.started_at < :until")
        params["until"] = sel.until
    if sel.source is not None:
        where.append("b.source = :source")
        params["source"] = sel.source
    if sel.setlist is not None:
        where.append("b.playlist_id = CAST(:setlist AS uuid)")
        params["setlist"] = sel.setlist
    return " AND ".join(where)


def _loads(data: str | bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:  # what orjson refuses (integers beyond 64 bits)
        return json.loads(data)


@contextlib.contextmanager
def _fast_json(session: Session) -> Iterator[None]:
    """Decode JSONB with orjson while the history is read: thousands of stored answers, whose
    decoding by the standard library was most of the read (same Python values either way)."""
    from psycopg.types.json import set_json_loads

    conn = cast(Any, session.connection().connection.dbapi_connection)
    set_json_loads(_loads, conn)
    try:
        yield
    finally:
        set_json_loads(json.loads, conn)


def load_history(session: Session, sel: Selection) -> list[TrackHistory]:
    """The stored answers of every bronze track of the selection (five queries in all)."""
    params: dict[str, Any] = {}
    jobs = session.execute(
        text(
            f"""
            SELECT j.id::text AS job_id, j.run_id::text AS run_id,
                   j.bronze_track_id::text AS bronze_id, r.started_at,
                   b.artist_name, b.track_title, b.raw_json, b.source
            FROM enrichment_jobs j
            JOIN enrichment_pipeline_runs r ON r.id = j.run_id
            JOIN bronze_scraped_tracks b ON b.id = j.bronze_track_id
            WHERE {_runs_clause(sel, params)}
            ORDER BY r.started_at, j.id
            """
        ),
        params,
    ).all()
    if not jobs:
        return []
    job_ids = [j.job_id for j in jobs]
    lookups: dict[str, list[Any]] = {}
    for row in session.execute(
        text(
            "SELECT job_id::text AS job_id, provider, round, fields, status, api_calls, "
            "cost_usd, latency_ms FROM enrichment_lookups "
            "WHERE job_id = ANY(CAST(:ids AS uuid[])) AND status <> 'pending'"
        ),
        {"ids": job_ids},
    ):
        lookups.setdefault(row.job_id, []).append(row)
    with _fast_json(session):
        outcomes = outcomes_by_job(session, [(j.run_id, j.bronze_id) for j in jobs])
    merged: dict[tuple[str, str], dict[str, tuple[str, Any]]] = {}
    for row in session.execute(
        text(
            """
            SELECT t.run_id::text, t.bronze_id::text, t.metadata_field, t.provider_used,
                   t.output_value
            FROM enrichment_transformations t
            JOIN unnest(CAST(:runs AS uuid[]), CAST(:bronzes AS uuid[])) AS k(run_id, bronze_id)
              ON k.run_id = t.run_id AND k.bronze_id = t.bronze_id
            WHERE t.transformation_type = 'merge' AND t.provider_used NOT LIKE 'scraped:%'
            """
        ),
        {"runs": [j.run_id for j in jobs], "bronzes": [j.bronze_id for j in jobs]},
    ):
        merged.setdefault((row[0], row[1]), {})[row[2]] = (row[3], row[4])
    tracks: dict[str, TrackHistory] = {}
    for j in jobs:  # oldest first: later jobs replace the baseline and newer answers win
        base = query_from_bronze(j)
        track = tracks.get(j.bronze_id)
        if track is None:
            track = tracks[j.bronze_id] = TrackHistory(
                bronze_id=j.bronze_id,
                artist=j.artist_name or "",
                title=j.track_title or "",
                source=j.source,
                query=base,
                unidentified=is_unidentified(j.artist_name, j.track_title),
                baseline_run=j.run_id,
                baseline_job=j.job_id,
            )
        job_outcomes = outcomes.get((j.run_id, j.bronze_id), [])
        job_lookups = lookups.get(j.job_id, [])
        rounds = {lk.provider: lk.round for lk in job_lookups}
        first_seen: dict[str, int] = {}
        for i, o in enumerate(job_outcomes):
            first_seen.setdefault(o.provider, i)
        by_provider: dict[str, list[Outcome]] = {}
        for o in job_outcomes:
            by_provider.setdefault(o.provider, []).append(o)
        answers = []
        for lk in job_lookups:
            learned = (
                [o for o in job_outcomes if rounds.get(o.provider, 0) < lk.round]
                if lk.round > 1
                else []
            )
            answers.append(
                Answer(
                    provider=lk.provider,
                    job_id=j.job_id,
                    run_id=j.run_id,
                    bronze_id=j.bronze_id,
                    round=lk.round,
                    fields=frozenset(lk.fields or ()),
                    status=lk.status,
                    calls=int(lk.api_calls or 0),
                    cost=Decimal(lk.cost_usd or 0),
                    latency_ms=lk.latency_ms,
                    query=with_learned_ids(base, learned) if lk.round > 1 else base,
                    outcomes=by_provider.get(lk.provider, []),
                    seq=(j.started_at.timestamp(), first_seen.get(lk.provider, 10_000)),
                )
            )
        for a in answers:
            track.answers[a.provider] = a
        track.baseline_run, track.baseline_job = j.run_id, j.job_id
        track.baseline_lookups = answers
        picked = merged.get((j.run_id, j.bronze_id), {})
        track.baseline_values = {f: v for f, (_, v) in picked.items()}
        track.baseline_providers = {f: p for f, (p, _) in picked.items()}
    return list(tracks.values())
