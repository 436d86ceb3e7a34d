"""Merge: resolve each field through the waterfall and write one silver track with provenance.

For a job whose lookups are all done: every field takes the first provider in priority order whose
confidence meets its threshold (``pipeline.waterfall.pick_winner``); identity resolution (ISRC,
then provider ids, then the normalised artist+title key) maps the bronze row onto an existing
silver track or a new one; a ``merge`` transformation per field records the candidates, the rule
and the winner; ``field_provenance`` keeps the whole chain. Idempotent: a merged job is not merged
twice.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from db.bulk import Bulk, unique_waves
from pipeline.enrich import is_unidentified, outcomes_by_job, to_jsonb
from pipeline.freshness import after_merge
from pipeline.matching import artist_key, identity_key, normalise_name, split_artists
from pipeline.normalise.bpm import consensus_bpm, fold_to_genre, plausible_for, reconcile_bpm
from pipeline.normalise.dates import parse_release_date
from pipeline.normalise.text import clean_scraped
from pipeline.plausibility import genres_of, plausible_bpm_winner, without_placeholders
from pipeline.quality import assess
from pipeline.runs import finish_run_if_done, load_plan
from pipeline.waterfall import FieldRule, Outcome, Winner, pick_winner

__all__ = [
    "IDENTITY_IDS",
    "TRACK_COLUMNS",
    "MergeResult",
    "Resolution",
    "_find_silver",  # merge's identity rule, reused by pipeline.identity_first (no second copy)
    "merge_job",
    "merge_jobs",
    "resolve_fields",
    "silver_ids_for_bronze",
    "upsert_artist",
    "write_merged",
]

log = logging.getLogger("songnodes.merge")

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
IDENTITY_IDS = (
    "isrc",
    "spotify_id",
    "beatport_id",
    "musicbrainz_id",
    "deezer_id",
    "tidal_id",
    "discogs_id",
)


@dataclass
class MergeResult:
    """What a merge produced; the caller enqueues gold and playlist merges after commit."""

    silver_track_id: str | None = None
    bronze_playlist_ids: list[str] = field(default_factory=list)
    run_finished: bool = False
    already_merged: bool = False
    #: Issue 17: every field reused, the bronze row only linked (its gold row is unchanged
    #: unless a playlist merge counts the appearance).
    linked_only: bool = False


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


def _lock(session: Session, key: str) -> None:
    # Serialises merges of the same identity across workers without a table lock.
    session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": key})


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
        _lock(session, f"artist:{norm}")
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


def _find_silver(
    session: Session,
    ids: dict[str, Any],
    ikey: str,
    *,
    silver_id: Any = None,
    lock: bool = True,
) -> Any:
    """The silver track these ids or this identity key belong to (ISRC first, then provider
    ids, then the key). ``silver_id``: the track identity-first matched this job to (issue 17)
    comes first. ``lock=False``: read only (planning, no write follows)."""
    conditions = ["identity_key = :ikey"]
    order = ["WHEN identity_key = :ikey THEN 9"]
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
        f"ORDER BY CASE {' '.join(order)} ELSE 10 END LIMIT 1"
        + (" FOR NO KEY UPDATE OF s" if lock else "")
    )
    return session.execute(text(sql), params).first()


def _prefetch_artists(session: Session, names: Sequence[str]) -> dict[str, str]:
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


@dataclass
class _Prepared:
    """A job's merge decided in memory (winners, values, lock keys), before any write."""

    job: Any
    run_id: str
    bronze_id: str
    plan: Any
    outcomes: list[Outcome]
    winners: dict[str, Winner]
    values: dict[str, Any]
    confidences: dict[str, float | None]
    metadata: dict[str, Any]
    warnings: list[dict[str, str]]
    rules: dict[str, dict[str, Any]]
    ikey: str
    artist_names: list[str]

    @property
    def linked_only(self) -> bool:
        """Issue 17: every field reused, nothing chosen: the job only links its bronze row."""
        return self.job.reuse_silver_id is not None and not self.rules

    def lock_keys(self, existing_artists: Mapping[str, str]) -> list[str]:
        """Advisory lock keys this job's writes need. An artist that already exists needs
        none: it is only linked, never created or changed, and artists are never deleted.
        (Locking every credited artist made concurrent batches that share one popular artist
        wait for each other's whole merge.)"""
        if self.linked_only:
            return []  # issue 17: creates nothing; the row lock of its final link suffices
        keys = [f"track:{self.ikey}"]
        keys += [f"{col}:{self.values[col]}" for col in IDENTITY_IDS if self.values.get(col)]
        keys += [
            f"artist:{key}"
            for key in map(artist_key, self.artist_names)
            if key not in existing_artists
        ]
        return keys


@dataclass
class _Deferred:
    """Rows of a merge batch that nothing in the batch reads back, written in one executemany
    per table at the end (or earlier, before a later job of the batch reads the same silver
    track's provenance)."""

    merges: list[dict[str, Any]] = field(default_factory=list)
    provenance: list[dict[str, Any]] = field(default_factory=list)
    track_artists: list[dict[str, Any]] = field(default_factory=list)
    merged_jobs: list[dict[str, Any]] = field(default_factory=list)
    silver_ids: set[str] = field(default_factory=set)
    links: list[dict[str, Any]] = field(default_factory=list)  # issue 17: linked-only rows

    def add(
        self,
        silver_id: str,
        job_id: Any,
        rows: tuple[list[dict[str, Any]], list[dict[str, Any]]],
        links: Sequence[dict[str, Any]] = (),
    ) -> None:
        """One merged job: its merge transformations + provenance rows, artist links, status."""
        merges, provenance = rows
        self.merges += merges
        self.provenance += provenance
        self.track_artists += links
        self.merged_jobs.append({"s": silver_id, "id": job_id})
        self.silver_ids.add(silver_id)

    def flush(self, session: Session) -> None:
        _MERGE_TRANSFORMATION.run(session, self.merges)
        # One statement may not upsert a (track, field) twice: a track fed twice in a batch
        # is flushed in between (``_write_merge``), and ``unique_waves`` guards the rest.
        for wave in unique_waves(self.provenance, lambda r: (r["silver"], r["field"])):
            _PROVENANCE.run(session, wave)
        _TRACK_ARTIST.run(session, self.track_artists)
        _JOB_MERGED.run(session, self.merged_jobs)
        if self.links:
            # Last, in track order: a hit's row is linked by most batches, and this is the only
            # lock a linked-only job takes, so it is held for the end of the batch only.
            session.execute(
                _LINK_BRONZES,
                {"s": [r["s"] for r in self.links], "b": [r["b"] for r in self.links]},
            )
        for rows in (
            self.merges, self.provenance, self.track_artists, self.merged_jobs, self.links
        ):
            rows.clear()
        self.silver_ids.clear()


_TRACK_ARTIST = Bulk.of(
    "INSERT INTO silver_track_artists (track_id, artist_id, position) "
    "SELECT r.t, r.a, r.p FROM {rows} ON CONFLICT DO NOTHING",
    [("t", "uuid"), ("a", "uuid"), ("p", "int")],
)
_JOB_MERGED = Bulk.of(
    "UPDATE enrichment_jobs j SET status = 'merged', silver_track_id = r.s, merged_at = now(),"
    " updated_at = now() FROM {rows} WHERE j.id = r.id",
    [("s", "uuid"), ("id", "uuid")],
)

_JOBS_SQL = text(
    """SELECT j.id::text AS id, j.run_id, j.bronze_track_id, j.status, j.fields,
              j.silver_track_id, b.source, b.artist_name, b.track_title, b.raw_json,
              b.playlist_id, j.replay_mode, j.reused_fields, j.reuse_silver_id
       FROM enrichment_jobs j JOIN bronze_scraped_tracks b ON b.id = j.bronze_track_id
       WHERE j.id = ANY(CAST(:ids AS uuid[]))
       ORDER BY j.id
       FOR NO KEY UPDATE OF j"""
)


@dataclass
class Resolution:
    """Every asked field resolved through the waterfall (pure: no database)."""

    winners: dict[str, Winner]
    values: dict[str, Any]  # silver column values, coerced to their column types
    extra: dict[str, Any]  # winning values of fields that are not silver columns
    confidences: dict[str, float | None]
    rules: dict[str, dict[str, Any]]  # what each field's merge transformation records
    warnings: list[dict[str, str]]
    metadata: dict[str, Any]  # additions to enrichment_metadata (winners, fallbacks, extra)


def resolve_fields(
    plan: Any, outcomes: list[Outcome], wanted: Collection[str], run_id: str
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


def _prepare(session: Session, job: Any, outcomes: list[Outcome]) -> _Prepared:
    """Pick every field's winner and the values to write (no database writes)."""
    run_id, bronze_id = str(job.run_id), str(job.bronze_track_id)
    plan = load_plan(session, run_id)
    wanted = set(job.fields) if job.fields else set(plan.rules)
    resolved = resolve_fields(plan, outcomes, wanted, run_id)
    values, confidences, rules = resolved.values, resolved.confidences, resolved.rules
    # Scraped names are the fallback: a track no provider knows keeps what the setlist said.
    scraped_names = (
        ("artist_name", clean_scraped(job.artist_name)),  # bronze keeps them as sent
        ("track_title", clean_scraped(job.track_title)),
    )
    for col, scraped in scraped_names:
        if not values.get(col):
            values[col] = scraped
            confidences[col] = None
            rules[col] = {
                "reason": f"no provider answer; scraped value from {job.source}",
                "fallback": True,
                "config_run_id": run_id,
            }
    ikey = identity_key(values["artist_name"], values["track_title"])
    artist_names = split_artists(values["artist_name"]) or [values["artist_name"]]
    reused = set(getattr(job, "reused_fields", None) or ())
    for col in ("artist_name", "track_title"):
        # Issue 17: a reused name keeps the track's value (and its artists): the scraped
        # fallback is for identity only, not written, and the field gets its reuse row.
        if col in reused and col not in resolved.winners and job.reuse_silver_id is not None:
            values.pop(col, None)
            confidences.pop(col, None)
            rules.pop(col, None)
            if col == "artist_name":
                artist_names = []
    return _Prepared(
        job=job,
        run_id=run_id,
        bronze_id=bronze_id,
        plan=plan,
        outcomes=outcomes,
        winners=resolved.winners,
        values=values,
        confidences=confidences,
        metadata=resolved.metadata,
        warnings=resolved.warnings,
        rules=rules,
        ikey=ikey,
        artist_names=artist_names,
    )


def merge_jobs(
    session: Session, job_ids: Sequence[str], *, override_fields: bool = False
) -> list[MergeResult]:
    """Merge a batch of jobs into silver in one transaction (see module docstring).

    Reads (jobs, outcomes) are one query each for the whole batch; winners are decided in
    memory; then every advisory lock the batch needs (track identity, provider ids, credited
    artists) is taken in ONE statement in one global order, so concurrent batches can never
    deadlock on each other, and the writes follow. Each job writes inside its own savepoint: a
    job that cannot be merged is marked ``failed`` with its error and the others go on.
    ``override_fields``: a replay's chosen fields replace the current values even when less
    confident. Results come back in ``job_ids`` order.
    """
    ids = list(dict.fromkeys(str(j) for j in job_ids))
    if not ids:
        return []
    jobs = {r.id: r for r in session.execute(_JOBS_SQL, {"ids": ids})}
    results: dict[str, MergeResult] = {}
    todo: list[Any] = []
    unidentified: list[str] = []
    for job in jobs.values():
        result = MergeResult(bronze_playlist_ids=[str(job.playlist_id)] if job.playlist_id else [])
        results[job.id] = result
        if job.status == "merged":
            result.silver_track_id = str(job.silver_track_id) if job.silver_track_id else None
            result.already_merged = True
        elif is_unidentified(job.artist_name, job.track_title):
            unidentified.append(job.id)
        else:
            todo.append(job)
    known = outcomes_by_job(session, [(str(j.run_id), str(j.bronze_track_id)) for j in todo])
    prepared = [
        _prepare(session, j, known.get((str(j.run_id), str(j.bronze_track_id)), [])) for j in todo
    ]
    # Artists that exist before the batch, resolved in one query before locking (see
    # ``lock_keys``). One created by a job of this batch is not cached: that job's savepoint
    # may still roll back.
    artists = _prefetch_artists(session, [n for p in prepared for n in p.artist_names])
    keys = sorted({k for p in prepared for k in p.lock_keys(artists)})
    if keys:
        session.execute(
            text(
                "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0))) "
                "FROM unnest(CAST(:keys AS text[])) AS k"
            ),
            {"keys": keys},
        )
    try:
        # The batch in one savepoint, none per job: a savepoint pair costs about as much client
        # CPU as the job's own statements. Any job failing sends the batch down the careful path.
        with session.begin_nested():
            deferred = _Deferred()
            for p in prepared:
                results[p.job.id].silver_track_id = _write_merge(
                    session, p, override_fields, deferred, artists, careful=False
                )
            deferred.flush(session)
    except OperationalError:
        raise  # deadlock, lost connection: the whole batch is retried
    except Exception:
        for p in prepared:
            results[p.job.id].silver_track_id = None
        _merge_carefully(session, prepared, results, override_fields, artists)
    for p in prepared:
        results[p.job.id].linked_only = p.linked_only
    # Issue 17: looked-up fields become checks, reused fields get their reuse row.
    after_merge(
        session,
        [
            (p.job, p.plan, sid, frozenset(p.rules))
            for p in prepared
            if (sid := results[p.job.id].silver_track_id)
        ],
    )
    if unidentified:
        session.execute(
            text(
                "UPDATE enrichment_jobs SET status = 'merged', merged_at = now(), "
                "updated_at = now() WHERE id = ANY(CAST(:ids AS uuid[]))"
            ),
            {"ids": unidentified},
        )
    # Once per run, last: the run row lock is then held only until this batch commits.
    for run_id in sorted({str(j.run_id) for j in jobs.values() if j.status != "merged"}):
        if finish_run_if_done(session, run_id):
            for job in jobs.values():
                if str(job.run_id) == run_id:
                    results[job.id].run_finished = True
    return [results.get(i, MergeResult()) for i in ids]


def _merge_carefully(
    session: Session,
    prepared: Sequence[_Prepared],
    results: dict[str, MergeResult],
    override_fields: bool,
    artists: dict[str, str],
) -> None:
    """Each job in its own savepoint: one that cannot be merged ends ``failed`` with its error
    and the others go on."""
    deferred = _Deferred()
    for p in prepared:
        try:
            with session.begin_nested():
                results[p.job.id].silver_track_id = _write_merge(
                    session, p, override_fields, deferred, artists
                )
        except OperationalError:
            raise  # deadlock, lost connection: the whole batch is retried
        except Exception as exc:
            log.exception("merge of job %s failed", p.job.id)
            session.execute(
                text(
                    "UPDATE enrichment_jobs SET status = 'failed', last_error = :e, "
                    "updated_at = now() WHERE id = :id"
                ),
                {"e": f"merge failed: {type(exc).__name__}: {exc}"[:2000], "id": p.job.id},
            )
        # Flushed after each job, outside its savepoint: a job that fails must not roll back
        # an earlier job's provenance (``_write_merge`` flushes inside its savepoint when it
        # meets a track an earlier job fed).
        deferred.flush(session)


def merge_job(session: Session, job_id: str, *, override_fields: bool = False) -> MergeResult:
    """Merge one job into silver (see :func:`merge_jobs`)."""
    return merge_jobs(session, [job_id], override_fields=override_fields)[0]


def _write_merge(
    session: Session,
    p: _Prepared,
    override_fields: bool,
    deferred: _Deferred,
    artists: dict[str, str] | None = None,
    *,
    careful: bool = True,
) -> str:
    """Write one prepared job: silver track, quality, provenance, artists; returns the silver id.
    The caller already holds every advisory lock this needs. Provenance, track-artist links and
    the job's status go to ``deferred``; the caller flushes it once for the batch. ``artists``:
    ids of artists known to exist (normalised name -> id). ``careful=False``: no savepoint
    around the silver write, an id conflict raises (the caller redoes the batch carefully)."""
    values, confidences, warnings = p.values, p.confidences, p.warnings
    reuse = p.job.reuse_silver_id
    if p.linked_only:
        silver_id = str(reuse)
        deferred.links.append({"s": silver_id, "b": p.bronze_id})
        deferred.add(silver_id, p.job.id, ([], []))
        return silver_id
    existing = _find_silver(session, values, p.ikey, silver_id=reuse)
    if existing is not None and str(existing.id) in deferred.silver_ids:
        # An earlier job of this batch fed this track: write its provenance, then read again.
        deferred.flush(session)
        existing = _find_silver(session, values, p.ikey, silver_id=reuse)
    # Provenance is written after this (deferred), so one read serves both uses below.
    known_conf: dict[str, float | None] = {}
    if existing is not None:
        known_conf = {
            k: None if v is None else float(v) for k, v in (existing.known_confidence or {}).items()
        }
    required = p.plan.required_fields()
    optional = [f for f in p.plan.rules if f not in required]

    def quality(current: Mapping[str, Any]) -> dict[str, Any]:
        """The quality columns for the track's values as written (``current``)."""
        all_conf = known_conf | {k: v for k, v in confidences.items() if k in current}
        q = assess(current, all_conf, required, optional, warnings)
        return {
            "q_score": q.score,
            "q_status": q.status,
            "q_errors": to_jsonb(q.errors),
            "q_warnings": to_jsonb(warnings),
            "q_meta": to_jsonb(p.metadata),
            "q_conf": to_jsonb({k: v for k, v in confidences.items() if v is not None}),
            "q_run": p.run_id,
        }

    silver_id = _write_silver(
        session,
        existing,
        values,
        confidences,
        p.ikey,
        p.bronze_id,
        override_fields,
        warnings,
        known_conf,
        quality,
        careful,
    )
    rows = _provenance_rows(silver_id, p.job, values, confidences, p.winners, p.outcomes, p.rules)
    known = artists or {}
    links = [
        {
            "t": silver_id,
            "a": known.get(artist_key(name)) or upsert_artist(session, name, locked=True),
            "p": position,
        }
        for position, name in enumerate(p.artist_names)
    ]
    # Only after every write of this job succeeded (the caller's savepoint may still roll it
    # back on an exception above, and then nothing of it may be flushed).
    deferred.add(silver_id, p.job.id, rows, links)
    return silver_id


# The quality columns and what a merge writes to them (the ``q_*`` parameters come from the
# merge's ``quality``). Both JSON objects named in _QUALITY_ADDED are added to what the track
# has; a new track starts them at ``{}``, so an insert writes the value itself.
_QUALITY_VALUES = {
    "data_quality_score": ":q_score",
    "validation_status": ":q_status",
    "validation_errors": "CAST(:q_errors AS jsonb)",
    "validation_warnings": "CAST(:q_warnings AS jsonb)",
    "enrichment_metadata": "CAST(:q_meta AS jsonb)",
    "field_confidence": "CAST(:q_conf AS jsonb)",
    "enrichment_run_id": ":q_run",
    "enriched_at": "now()",
    "validated_at": "now()",
}
_QUALITY_ADDED = frozenset({"enrichment_metadata", "field_confidence"})
_QUALITY_SETS = ", ".join(
    f"{col} = {col} || {value}" if col in _QUALITY_ADDED else f"{col} = {value}"
    for col, value in _QUALITY_VALUES.items()
)


# Issue 17: link linked-only sightings' bronze rows to their tracks (values, quality and
# metadata stay as the merges that chose them wrote them), rows locked in id order.
_LINK_BRONZES = text(
    """
    WITH k AS (
        SELECT CAST(s AS uuid) AS s, array_agg(DISTINCT CAST(b AS uuid)) AS b
        FROM unnest(CAST(:s AS text[]), CAST(:b AS text[])) AS r(s, b) GROUP BY 1
    ), locked AS (
        SELECT t.id, k.b FROM silver_enriched_tracks t JOIN k ON k.s = t.id
        ORDER BY t.id FOR NO KEY UPDATE OF t
    )
    UPDATE silver_enriched_tracks t SET updated_at = now(),
        additional_bronze_ids = t.additional_bronze_ids || ARRAY(
            SELECT x FROM unnest(l.b) x
            WHERE x <> t.bronze_id AND NOT x = ANY(t.additional_bronze_ids))
    FROM locked l WHERE t.id = l.id
    """
)


def _insert_silver(
    session: Session,
    params: dict[str, Any],
    ikey: str,
    bronze_id: str,
    quality: Callable[[Mapping[str, Any]], dict[str, Any]],
) -> str:
    """Insert the track with its quality columns, in one statement.

    Quality is judged on the values as given, not read back: it looks at which fields are
    present, and PostgreSQL stores every given one as present (no column a rule reads has a
    default; the write trigger only normalises the key).
    """
    cols = list(params)
    names = ["bronze_id", "identity_key", *cols, *_QUALITY_VALUES]
    values = [":bronze", ":ikey", *(f":{c}" for c in cols), *_QUALITY_VALUES.values()]
    new_id = session.execute(
        text(
            f"INSERT INTO silver_enriched_tracks ({', '.join(names)}) "
            f"VALUES ({', '.join(values)}) RETURNING id"
        ),
        params | {"ikey": ikey, "bronze": bronze_id} | quality(params),
    ).scalar_one()
    return str(new_id)


def _update_silver(
    session: Session,
    updates: dict[str, Any],
    silver_id: str,
    bronze_id: str,
    quality_params: dict[str, Any],
) -> str:
    """Write ``updates`` and the quality columns (``quality_params``, see ``_QUALITY_SETS``) to
    the track in one statement, and record ``bronze_id`` as one of its sources."""
    sets = "".join(f"{c} = :{c}, " for c in updates)
    session.execute(
        text(
            f"UPDATE silver_enriched_tracks SET {sets}{_QUALITY_SETS}, "
            "additional_bronze_ids = CASE WHEN bronze_id = CAST(:bronze AS uuid) OR "
            "CAST(:bronze AS uuid) = ANY(additional_bronze_ids) THEN additional_bronze_ids "
            "ELSE additional_bronze_ids || CAST(:bronze AS uuid) END "
            "WHERE id = :id"
        ),
        updates | quality_params | {"id": silver_id, "bronze": bronze_id},
    )
    return silver_id


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


def _write_silver(
    session: Session,
    existing: Any,
    values: dict[str, Any],
    confidences: dict[str, float | None],
    ikey: str,
    bronze_id: str,
    override: bool,
    warnings: list[dict[str, str]],
    current_conf: dict[str, float | None],
    quality: Callable[[Mapping[str, Any]], dict[str, Any]],
    careful: bool = True,
) -> str:
    """Insert or update the silver track with its quality columns; returns its id.
    ``quality(values as written)``: the quality columns' parameters, computed after any
    warning about dropped ids. ``careful=False``: no savepoint, an id conflict raises
    ``IntegrityError``."""
    savepoint = session.begin_nested if careful else contextlib.nullcontext
    if existing is None:
        params = {c: values[c] for c in TRACK_COLUMNS if values.get(c) is not None}
        try:
            with savepoint():
                return _insert_silver(session, params, ikey, bronze_id, quality)
        except IntegrityError:
            if not careful:
                raise
            # Another record already owns one of the ids (an ISRC shared by two names): keep the
            # track, drop the conflicting ids, and say so.
            warnings.append(
                {
                    "field": "identity",
                    "warning": "provider ids already belong to "
                    "another silver track; stored without them (possible duplicate)",
                }
            )
            safe = {c: v for c, v in params.items() if c not in IDENTITY_IDS}
            return _insert_silver(session, safe, ikey, bronze_id, quality)
    silver_id = str(existing.id)
    updates: dict[str, Any] = {}
    for col in TRACK_COLUMNS:
        new = values.get(col)
        if new is None:
            continue
        old_conf = current_conf.get(col)
        new_conf = confidences.get(col)
        if (
            override
            or existing._mapping[col] is None
            or old_conf is None
            or (new_conf is not None and new_conf >= old_conf)
        ):
            updates[col] = new

    def written(cols: dict[str, Any]) -> dict[str, Any]:
        # The values the track has once ``cols`` are written: what quality is judged on.
        return {c: cols[c] if c in cols else existing._mapping[c] for c in TRACK_COLUMNS}

    try:
        with savepoint():
            return _update_silver(session, updates, silver_id, bronze_id, quality(written(updates)))
    except IntegrityError:
        if not careful:
            raise
        safe = {c: v for c, v in updates.items() if c not in IDENTITY_IDS}
        warnings.append(
            {
                "field": "identity",
                "warning": "provider ids already belong to "
                "another silver track; not copied (possible duplicate)",
            }
        )
        return _update_silver(session, safe, silver_id, bronze_id, quality(written(safe)))


_MERGE_TRANSFORMATION = Bulk.of(
    """
    INSERT INTO enrichment_transformations
        (id, run_id, bronze_id, silver_id, transformation_type, metadata_field, provider_used,
         provider_confidence, input_value, output_value, transformation_rules, success)
    SELECT r.id, r.run, r.bronze, r.silver, 'merge', r.field, r.provider, r.conf,
           r.input, r.output, r.rules, true
    FROM {rows}""",
    [
        ("id", "uuid"), ("run", "uuid"), ("bronze", "uuid"), ("silver", "uuid"),
        ("field", "text"), ("provider", "text"), ("conf", "numeric"), ("input", "jsonb"),
        ("output", "jsonb"), ("rules", "jsonb"),
    ],
)  # fmt: skip

_PROVENANCE = Bulk.of(
    """
    INSERT INTO field_provenance AS fp
        (silver_track_id, metadata_field, original_bronze_id, original_source, original_value,
         transformation_chain, final_transformation_id, current_value, current_confidence,
         current_provider, total_transformations, last_modified_run_id)
    SELECT r.silver, r.field, r.bronze, r.source, r.orig,
           r.chain, r.final, r.value, r.conf,
           r.provider, r.n, r.run
    FROM {rows}
    ON CONFLICT (silver_track_id, metadata_field) DO UPDATE SET
        transformation_chain = fp.transformation_chain || EXCLUDED.transformation_chain,
        final_transformation_id = EXCLUDED.final_transformation_id,
        current_value = EXCLUDED.current_value,
        current_confidence = EXCLUDED.current_confidence,
        current_provider = EXCLUDED.current_provider,
        total_transformations = fp.total_transformations + EXCLUDED.total_transformations,
        last_modified_run_id = EXCLUDED.last_modified_run_id,
        updated_at = now()""",
    [
        ("silver", "uuid"), ("field", "text"), ("bronze", "uuid"), ("source", "text"),
        ("orig", "jsonb"), ("chain", "uuid[]"), ("final", "uuid"), ("value", "jsonb"),
        ("conf", "numeric"), ("provider", "text"), ("n", "int"), ("run", "uuid"),
    ],
)  # fmt: skip


def write_merged(
    session: Session,
    silver_id: str,
    job: Any,
    values: dict[str, Any],
    confidences: dict[str, float | None],
    winners: dict[str, Winner],
    outcomes: list[Outcome],
    rules: dict[str, dict[str, Any]],
) -> None:
    """Write one merged job's merge transformations and provenance, and mark it merged, now (the
    same rows and statements a merge batch writes; a partial replay merges one job at a time)."""
    done = _Deferred()
    rows = _provenance_rows(silver_id, job, values, confidences, winners, outcomes, rules)
    done.add(silver_id, job.id, rows)
    done.flush(session)


def _provenance_rows(
    silver_id: str,
    job: Any,
    values: dict[str, Any],
    confidences: dict[str, float | None],
    winners: dict[str, Winner],
    outcomes: list[Outcome],
    rules: dict[str, dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The ``merge`` transformation rows and provenance rows of one merged job."""
    raw = job.raw_json if isinstance(job.raw_json, dict) else {}
    merges: list[dict[str, Any]] = []
    provenance: list[dict[str, Any]] = []
    for name, rule in rules.items():
        w = winners.get(name)
        considered = [o for o in outcomes if o.field == name]
        value = values.get(name, w.outcome.value if w else None)
        if isinstance(value, dt.date):
            value = value.isoformat()
        provider = w.outcome.provider if w else f"scraped:{job.source}"
        conf = None if confidences.get(name) is None else round(confidences[name] or 0, 2)
        merge_id = str(uuid.uuid4())
        merges.append(
            {
                "id": merge_id,
                "run": str(job.run_id),
                "bronze": str(job.bronze_track_id),
                "silver": silver_id,
                "field": name,
                "provider": provider,
                "conf": conf,
                "input": to_jsonb(
                    [
                        {
                            "provider": o.provider,
                            "value": o.value,
                            "confidence": o.confidence,
                            "success": o.success,
                        }
                        for o in considered
                    ]
                ),
                "output": to_jsonb(value),
                "rules": to_jsonb(rule),
            }
        )
        chain = [str(o.transformation_id) for o in considered if o.transformation_id]
        chain.append(merge_id)
        provenance.append(
            {
                "silver": silver_id,
                "field": name,
                "bronze": str(job.bronze_track_id),
                "source": job.source,
                "orig": to_jsonb(raw.get(name)),
                "chain": chain,
                "final": merge_id,
                "value": to_jsonb(value),
                "conf": conf,
                "provider": provider,
                "n": len(chain),
                "run": str(job.run_id),
            }
        )
    return merges, provenance


def silver_ids_for_bronze(session: Session, bronze_ids: list[UUID | str]) -> list[str]:
    """Silver tracks built from these bronze rows (primary or additional)."""
    rows = session.execute(
        text(
            "SELECT id FROM silver_enriched_tracks WHERE bronze_id = ANY(CAST(:ids AS uuid[])) "
            "OR additional_bronze_ids && CAST(:ids AS uuid[])"
        ),
        {"ids": [str(b) for b in bronze_ids]},
    )
    return [str(r[0]) for r in rows]
