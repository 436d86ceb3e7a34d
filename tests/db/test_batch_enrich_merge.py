"""Batched lookup recording and batched merges on real PostgreSQL (each test rolled back).

The lookup task records a whole message (up to 40 jobs) with ``record_outcomes`` and the merge
task merges a whole batch with ``merge_batch``: these tests pin what batching must not change
(redelivery adds nothing, one bad job does not sink the others, exact per-field counts).
"""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from pipeline.enrich import LookupOutcome, create_jobs, lookup_inputs, record_outcomes
from pipeline.merge import merge_batch
from pipeline.runs import start_run
from providers.contract import FieldValue, LookupResult, RawResponse
from tests.db._helpers import insert_scraped_track


def _answer(provider: str, fields: list[str], bpm: float) -> LookupResult:
    values = {"bpm": FieldValue("bpm", bpm, 0.99, {"bpm": bpm})} if "bpm" in fields else {}
    return LookupResult(
        provider,
        "found",
        values=values,
        responses=[RawResponse("GET https://api.test/x", {"q": "x"}, 200, {"bpm": bpm}, 1.0)],
    )


def test_record_outcomes_records_a_batch_once_and_advances_every_job(db_session: Session) -> None:
    """Round one of three jobs, recorded provider by provider as batches (one job listed twice):
    one response and one transformation per asked field per job; recording a batch again (a
    redelivered message) adds nothing; once the round's last provider is recorded, every job
    moves on (next round or merge), and not before."""
    run = str(start_run(db_session, "manual", "test"))
    tag = uuid.uuid4().hex[:6]
    bronzes = [
        insert_scraped_track(db_session.connection(), f"Batch {tag}", f"Track {i}")
        for i in range(3)
    ]
    nxt = create_jobs(db_session, run, bronzes)
    rounds = sorted(nxt.lookups.items())
    assert all(len(jobs) == 3 for _, jobs in rounds)
    expected_fields = 0
    moved_on: list[set[str]] = []
    for provider, job_ids in rounds:
        inputs = lookup_inputs(db_session, job_ids, provider)
        assert [li.bronze_id for li in inputs] == bronzes  # message order kept
        expected_fields += sum(len(li.fields) for li in inputs)
        outcomes = [LookupOutcome(li, result=_answer(provider, li.fields, 124.0)) for li in inputs]
        step = record_outcomes(db_session, [*outcomes, outcomes[0]], attempts=1)
        assert not record_outcomes(db_session, outcomes, attempts=1)  # redelivery: no-op
        assert lookup_inputs(db_session, job_ids, provider) == []
        moved_on.append(set(step.merges) | {j for js in step.lookups.values() for j in js})

    counts = db_session.execute(
        text(
            "SELECT (SELECT count(*) FROM bronze_api_enrichments WHERE run_id = :r),"
            " (SELECT count(*) FROM enrichment_transformations WHERE run_id = :r),"
            " (SELECT count(*) FROM enrichment_lookups l JOIN enrichment_jobs j"
            "   ON j.id = l.job_id WHERE j.run_id = :r AND l.status = 'found')"
        ),
        {"r": run},
    ).one()
    assert tuple(counts) == (3 * len(rounds), expected_fields, 3 * len(rounds))
    assert all(not s for s in moved_on[:-1])
    assert moved_on[-1] == set(rounds[0][1])


def test_record_outcomes_divides_a_failed_lookups_cost_across_fields(db_session: Session) -> None:
    """A given-up lookup that made two paid calls costs 2 x price in total, not per field."""
    run = str(start_run(db_session, "manual", "test"))
    bronze = insert_scraped_track(
        db_session.connection(), f"Cost {uuid.uuid4().hex[:6]}", "Paid Twice"
    )
    nxt = create_jobs(db_session, run, [bronze])
    provider, job_ids = sorted(nxt.lookups.items())[0]
    (li,) = lookup_inputs(db_session, job_ids, provider)
    li = type(li)(**{**li.__dict__, "cost_per_call": Decimal("0.01")})
    calls = [RawResponse("GET https://api.test/x", {}, 503, {}, 1.0)] * 2
    record_outcomes(db_session, [LookupOutcome(li, error="gave up", responses=calls)], attempts=3)
    total, per_lookup = db_session.execute(
        text(
            "SELECT (SELECT sum(api_cost_usd) FROM enrichment_transformations WHERE run_id = :r),"
            " (SELECT cost_usd FROM enrichment_lookups WHERE job_id = :j AND provider = :p)"
        ),
        {"r": run, "j": job_ids[0], "p": provider},
    ).one()
    assert per_lookup == Decimal("0.02")
    assert abs(total - Decimal("0.02")) < Decimal("0.00001")


def test_a_batch_part_counted_by_another_lookup_costs_nothing(db_session: Session) -> None:
    """Lookups answered from one batch request: the part that counts the request costs one
    call, the others (``calls=0``) none, so the run pays for the requests actually made."""
    run = str(start_run(db_session, "manual", "test"))
    tag = uuid.uuid4().hex[:6]
    bronzes = [
        insert_scraped_track(db_session.connection(), f"Parts {tag}", f"T{i}") for i in range(2)
    ]
    nxt = create_jobs(db_session, run, bronzes)
    provider, job_ids = sorted(nxt.lookups.items())[0]
    inputs = [
        type(li)(**{**li.__dict__, "cost_per_call": Decimal("0.01")})
        for li in lookup_inputs(db_session, job_ids, provider)
    ]
    outcomes = []
    for li, counted in zip(inputs, (1, 0), strict=True):
        part = RawResponse(
            "GET https://api.test/bulk", {"ids": li.bronze_id}, 200, {}, 1.0, calls=counted
        )
        outcomes.append(
            LookupOutcome(li, result=LookupResult(provider, "not_found", responses=[part]))
        )
    record_outcomes(db_session, outcomes, attempts=1)
    rows = db_session.execute(
        text(
            "SELECT l.api_calls, l.cost_usd FROM enrichment_lookups l JOIN enrichment_jobs j"
            " ON j.id = l.job_id WHERE j.run_id = :r AND l.provider = :p ORDER BY l.api_calls DESC"
        ),
        {"r": run, "p": provider},
    ).all()
    assert [tuple(r) for r in rows] == [(1, Decimal("0.01")), (0, Decimal("0"))]
    stored = db_session.execute(
        text("SELECT count(*) FROM bronze_api_enrichments WHERE run_id = :r"), {"r": run}
    ).scalar_one()
    assert stored == 2  # each lookup still stores its part


def test_a_new_tracks_quality_is_the_one_judged_on_the_stored_row(db_session: Session) -> None:
    """A new silver track is written with its quality columns in one statement, judged on the
    merged values; recomputing the quality from the row PostgreSQL stored gives the same."""
    from pipeline.quality import assess
    from pipeline.runs import load_plan

    run = str(start_run(db_session, "manual", "test"))
    tag = uuid.uuid4().hex[:6]
    bronze = insert_scraped_track(db_session.connection(), f"Quality {tag}", "Stored")
    job = _merging_job(db_session, run, bronze, 126.0, {"isrc": f"QZ{tag.upper()}00001"})
    (result,) = merge_batch(db_session, [job])
    row = db_session.execute(
        text("SELECT * FROM silver_enriched_tracks WHERE id = :s"), {"s": result.silver_track_id}
    ).one()
    plan = load_plan(db_session, run)
    required = plan.required_fields()
    optional = [f for f in plan.rules if f not in required]
    stored = dict(row._mapping)
    conf = {k: float(v) for k, v in row.field_confidence.items() if k in stored}
    expected = assess(stored, conf, required, optional, row.validation_warnings)
    assert (float(row.data_quality_score), row.validation_status, row.validation_errors) == (
        expected.score,
        expected.status,
        expected.errors,
    )
    assert row.enrichment_run_id is not None and str(row.enrichment_run_id) == run
    assert row.field_confidence["bpm"] == 0.99 and row.enriched_at is not None
    # What makes judging the given values right: no column a rule reads has a default.
    from pipeline.merge import TRACK_COLUMNS

    defaults = db_session.execute(
        text(
            "SELECT column_name, column_default FROM information_schema.columns "
            "WHERE table_name = 'silver_enriched_tracks' AND column_name = ANY(:c)"
        ),
        {"c": list(TRACK_COLUMNS)},
    ).all()
    assert len(defaults) == len(TRACK_COLUMNS)
    assert [c for c, d in defaults if d is not None] == []


def _merging_job(
    session: Session, run: str, bronze: str, bpm: float, ids: dict[str, str] | None = None
) -> str:
    """A job ready to merge: beatport answered ``bpm``; spotify answered ``ids`` (field ->
    value, e.g. isrc, spotify_id), all at 0.99."""
    answers = [("bpm", "beatport", str(bpm))]
    answers += [(f, "spotify", json.dumps(v)) for f, v in (ids or {}).items()]
    job = str(
        session.execute(
            text(
                "INSERT INTO enrichment_jobs (run_id, bronze_track_id, status, fields) "
                "VALUES (:r, :b, 'merging', CAST(:f AS text[])) RETURNING id"
            ),
            {
                "r": run,
                "b": bronze,
                "f": ["artist_name", "track_title", *(f for f, _, _ in answers)],
            },
        ).scalar_one()
    )
    for field_name, provider, value in answers:
        session.execute(
            text(
                "INSERT INTO enrichment_transformations (run_id, bronze_id, transformation_type,"
                " metadata_field, provider_used, provider_confidence, output_value, success)"
                " VALUES (:r, :b, 'enrichment', :f, :p, 0.99, CAST(:v AS jsonb), true)"
            ),
            {"r": run, "b": bronze, "f": field_name, "p": provider, "v": value},
        )
    return job


def _silver(session: Session, columns: str, ids: list[Any]) -> dict[str, tuple[Any, ...]]:
    """silver track id -> ``columns`` of those tracks."""
    rows = session.execute(
        text(
            f"SELECT id::text, {columns} FROM silver_enriched_tracks t "
            "WHERE id = ANY(CAST(:ids AS uuid[]))"
        ),
        {"ids": ids},
    )
    return {r[0]: tuple(r[1:]) for r in rows}


def test_merge_jobs_merges_a_batch_and_isolates_a_failing_job(db_session: Session) -> None:
    """Three jobs in one batch: the one whose BPM the silver CHECK refuses ends ``failed`` with
    the reason; the other two are merged with their values; the run closes."""
    run = str(start_run(db_session, "manual", "test"))
    tag = uuid.uuid4().hex[:6]
    good = [
        _merging_job(
            db_session,
            run,
            insert_scraped_track(db_session.connection(), f"Good {tag}", f"T{i}"),
            120.0 + i,
        )
        for i in range(2)
    ]
    bad = _merging_job(
        db_session,
        run,
        insert_scraped_track(db_session.connection(), f"Bad {tag}", "Too Fast"),
        5000.0,
    )

    results = merge_batch(db_session, [good[0], bad, good[1]])

    assert [r.silver_track_id is not None for r in results] == [True, False, True]
    rows = db_session.execute(
        text(
            "SELECT j.id::text, j.status, j.last_error, s.bpm FROM enrichment_jobs j"
            " LEFT JOIN silver_enriched_tracks s ON s.id = j.silver_track_id WHERE j.run_id = :r"
        ),
        {"r": run},
    ).all()
    by_id = {r[0]: r for r in rows}
    assert [by_id[g][1] for g in good] == ["merged", "merged"]
    assert [float(by_id[g][3]) for g in good] == [120.0, 121.0]
    assert by_id[bad][1] == "failed"
    assert "merge failed" in by_id[bad][2] and "bpm" in by_id[bad][2]
    status = db_session.execute(
        text("SELECT run_status FROM enrichment_pipeline_runs WHERE id = :r"), {"r": run}
    ).scalar_one()
    assert status in ("completed", "failed", "partial")
    assert any(r.run_finished for r in results)
    # A redelivered batch changes nothing and reports the same silver tracks.
    again = merge_batch(db_session, [good[0], good[1]])
    assert [r.silver_track_id for r in again] == [
        results[0].silver_track_id,
        results[2].silver_track_id,
    ]
    assert all(r.already_merged for r in again)


def test_light_outcome_reads_agree_with_the_full_read(db_session: Session) -> None:
    """The fan-in reads only whether each outcome has a value: it must agree with the full read
    the merge uses, and decide the same next round from either."""
    from pipeline.enrich import outcomes_by_job
    from pipeline.runs import load_plan
    from pipeline.waterfall import next_lookups

    run = str(start_run(db_session, "manual", "test"))
    bronze = insert_scraped_track(db_session.connection(), f"Light {uuid.uuid4().hex[:6]}", "Read")
    nxt = create_jobs(db_session, run, [bronze])

    def answer(provider: str, fields: list[str]) -> LookupResult:
        sample = {"bpm": 124.0, "isrc": "GBAYE0000001"}
        values = {
            f: FieldValue(f, sample.get(f, f"{provider}-{f}"), 0.95, {f: 1})
            for f in fields
            if f in sample or f.endswith("_id")
        }
        return LookupResult(provider, "found" if values else "not_found", values=values)

    for provider, job_ids in sorted(nxt.lookups.items()):
        inputs = lookup_inputs(db_session, job_ids, provider)
        record_outcomes(
            db_session, [LookupOutcome(li, result=answer(provider, li.fields)) for li in inputs], 1
        )
    key = (run, bronze)
    full = outcomes_by_job(db_session, [key])[key]
    presence = outcomes_by_job(db_session, [key], read="presence")[key]
    assert any(o.value is None for o in full) and any(o.value is not None for o in full)

    def shape(o: object) -> tuple[object, ...]:
        return (o.provider, o.field, o.confidence, o.success)  # type: ignore[attr-defined]

    assert [shape(o) for o in presence] == [shape(o) for o in full]
    assert [o.value for o in presence] == [True if o.value is not None else None for o in full]
    assert all(o.transformation_id is None for o in presence)
    plan = load_plan(db_session, run)
    asked = sorted(nxt.lookups)
    assert next_lookups(plan, asked, presence) == next_lookups(plan, asked, full)


def _merge_unanswered(db_session: Session, bronzes: list[str]) -> list[str]:
    """Run every round of the bronze rows' jobs with nothing found, then merge them as one batch;
    returns the silver track ids in ``bronzes`` order."""
    run = str(start_run(db_session, "manual", "test"))
    nxt = create_jobs(db_session, run, bronzes)
    job_ids = [j for js in nxt.lookups.values() for j in js]
    while nxt.lookups:
        step_lookups: dict[str, list[str]] = {}
        for provider, jobs in sorted(nxt.lookups.items()):
            inputs = lookup_inputs(db_session, jobs, provider)
            outcomes = [
                LookupOutcome(li, result=LookupResult(provider, "not_found")) for li in inputs
            ]
            for p, js in record_outcomes(db_session, outcomes, 1).lookups.items():
                step_lookups.setdefault(p, []).extend(js)
        nxt.lookups = step_lookups
    merge_batch(db_session, sorted(set(job_ids)))
    silver = dict(
        db_session.execute(
            text(
                "SELECT bronze_track_id::text, silver_track_id::text FROM enrichment_jobs "
                "WHERE run_id = :r"
            ),
            {"r": run},
        ).all()
    )
    return [silver[b] for b in bronzes]


def test_batch_links_existing_artists_by_name_or_alias_and_creates_new_ones(
    db_session: Session,
) -> None:
    """A merge batch resolves the artists that already exist in one query (by normalised name or
    alias, like upsert_artist) and still creates the ones it meets for the first time."""
    from pipeline.merge import upsert_artist

    tag = uuid.uuid4().hex[:6]
    known = upsert_artist(db_session, f"Käse {tag}", aliases=[f"Cheese {tag}"])
    conn = db_session.connection()
    bronzes = [
        insert_scraped_track(conn, f"CHEESE {tag}", "By Alias"),
        insert_scraped_track(conn, f"New Face {tag} & Kase {tag}", "Two Credits"),
    ]
    silver = _merge_unanswered(db_session, bronzes)
    links = db_session.execute(
        text(
            "SELECT ta.track_id::text, ta.position, a.id::text, a.normalized_name "
            "FROM silver_track_artists ta JOIN silver_enriched_artists a ON a.id = ta.artist_id "
            "WHERE ta.track_id = ANY(CAST(:t AS uuid[])) ORDER BY ta.track_id, ta.position"
        ),
        {"t": silver},
    ).all()
    by_track: dict[str, list[tuple[int, str, str]]] = {}
    for track, position, artist, norm in links:
        by_track.setdefault(track, []).append((position, artist, norm))
    assert [a for _, a, _ in by_track[silver[0]]] == [known]
    (p0, new_id, new_norm), (p1, second, _) = by_track[silver[1]]
    assert (p0, p1) == (0, 1) and second == known
    assert new_id != known and new_norm == f"new face {tag}"


def test_a_lookup_learns_ids_only_from_earlier_rounds(db_session: Session) -> None:
    """Round-one lookups run side by side: one must not learn an ISRC another round-one provider
    happened to record first (the request would depend on timing, and a stored replay could not
    repeat it). A round-two lookup learns it."""
    run = str(start_run(db_session, "manual", "test"))
    bronze = insert_scraped_track(db_session.connection(), f"Learn {uuid.uuid4().hex[:6]}", "Ids")
    nxt = create_jobs(db_session, run, [bronze])
    first, *others = sorted(nxt.lookups)
    assert others, "the seeded waterfall asks several providers in round one"
    isrc = "GBAYE0000042"

    def found(provider: str, fields: list[str]) -> LookupResult:
        values = {f: FieldValue(f, isrc, 0.99, {}) for f in fields if f == "isrc"}
        values |= {
            f: FieldValue(f, f"{provider}-id", 0.99, {}) for f in fields if f.endswith("_id")
        }
        return LookupResult(provider, "found", values=values)

    inputs = lookup_inputs(db_session, nxt.lookups[first], first)
    later = record_outcomes(
        db_session, [LookupOutcome(li, result=found(first, li.fields)) for li in inputs], 1
    )
    assert not later.lookups  # round one is not over yet
    for provider in others:
        (li,) = lookup_inputs(db_session, nxt.lookups[provider], provider)
        assert li.query.isrc is None and first not in li.query.provider_ids, provider
        step = record_outcomes(
            db_session, [LookupOutcome(li, result=found(provider, li.fields))], 1
        )
    assert step.lookups, "the seeded waterfall has a second round"
    provider, jobs = sorted(step.lookups.items())[0]
    (li,) = lookup_inputs(db_session, jobs, provider)
    assert li.query.isrc == isrc
    assert li.query.provider_ids.get(first) == f"{first}-id"


def test_batches_crediting_the_same_existing_artist_do_not_wait_for_each_other(
    engine: Engine,
) -> None:
    """An artist that already exists is only linked, so merging it takes no advisory lock: a
    batch still inside its transaction must not hold up another batch crediting the same
    artist (with the lock, the second one waits for the first to commit; here it would hit the
    lock timeout). An artist neither batch knows is still locked by both."""
    from pipeline.merge import upsert_artist

    tag = uuid.uuid4().hex[:6]
    with Session(engine) as setup, setup.begin():
        artist = upsert_artist(setup, f"Shared {tag}")
    try:
        with Session(engine) as first, Session(engine) as second:
            first.begin()
            second.begin()
            second.execute(text("SET LOCAL lock_timeout = '3s'"))
            a = _merge_unanswered(
                first, [insert_scraped_track(first.connection(), f"Shared {tag}", "One")]
            )
            b = _merge_unanswered(
                second, [insert_scraped_track(second.connection(), f"Shared {tag}", "Two")]
            )  # raises LockNotAvailable if the first batch's artist lock were still held
            linked = second.execute(
                text("SELECT artist_id::text FROM silver_track_artists WHERE track_id = :t"),
                {"t": b[0]},
            ).scalar_one()
            assert linked == artist and a[0] != b[0]
            with pytest.raises(OperationalError, match="lock timeout"):
                # a new artist, still being created by the first batch: the second one waits
                _merge_unanswered(
                    first, [insert_scraped_track(first.connection(), f"Fresh {tag}", "Three")]
                )
                second.execute(text("SET LOCAL lock_timeout = '300ms'"))
                _merge_unanswered(
                    second, [insert_scraped_track(second.connection(), f"Fresh {tag}", "Four")]
                )
            first.rollback()
            second.rollback()
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM silver_enriched_artists WHERE id = :a"), {"a": artist})


def test_ids_owned_by_another_track_are_dropped_and_the_rest_of_the_batch_merges(
    db_session: Session,
) -> None:
    """A job whose ISRC finds track A but whose Spotify id already belongs to track C cannot
    copy that id (unique). The batch falls back to one savepoint per job: that job still merges
    into A, without the id and with a "possible duplicate" warning, and the other job of the
    batch merges as usual."""
    run = str(start_run(db_session, "manual", "test"))
    tag = uuid.uuid4().hex[:6]
    conn = db_session.connection()
    isrc, spotify = f"QZ{tag[:3].upper()}{int(tag, 16) % 10**7:07d}", f"sp{tag}"
    owners = [
        _merging_job(db_session, run, insert_scraped_track(conn, f"A {tag}", "One"), 120.0,
                     {"isrc": isrc}),
        _merging_job(db_session, run, insert_scraped_track(conn, f"C {tag}", "Two"), 121.0,
                     {"spotify_id": spotify}),
    ]  # fmt: skip
    a, c = (r.silver_track_id for r in merge_batch(db_session, owners))
    both = _merging_job(
        db_session,
        run,
        insert_scraped_track(conn, f"B {tag}", "Three"),
        122.0,
        {"isrc": isrc, "spotify_id": spotify},
    )
    plain = _merging_job(db_session, run, insert_scraped_track(conn, f"D {tag}", "Four"), 123.0)
    results = merge_batch(db_session, [both, plain])
    assert results[0].silver_track_id == a and results[1].silver_track_id not in (None, a, c)
    tracks = _silver(
        db_session,
        "isrc, spotify_id, bpm, validation_warnings::text",
        [a, c, results[1].silver_track_id],
    )
    assert tracks[a][:3] == (isrc, None, Decimal("122.00"))
    assert "possible duplicate" in tracks[a][3]
    assert tracks[c][:2] == (None, spotify)
    assert tracks[results[1].silver_track_id][2] == Decimal("123.00")
    statuses = db_session.execute(
        text("SELECT status FROM enrichment_jobs WHERE id = ANY(CAST(:ids AS uuid[]))"),
        {"ids": [both, plain]},
    ).scalars()
    assert sorted(statuses) == ["merged", "merged"]


def test_a_batch_finds_tracks_made_earlier_in_the_same_batch_and_before_it(
    db_session: Session,
) -> None:
    """A job must find a track that an earlier job of the same batch created (same ISRC, other
    names: a lookup made for the whole batch before its writes would have found nothing), and a
    job matching a track that existed before the batch must land on that track; an unrelated job
    gets a track of its own. What any batched silver lookup must keep."""
    run = str(start_run(db_session, "manual", "test"))
    tag = uuid.uuid4().hex[:6]
    conn = db_session.connection()
    isrc, spotify = f"QY{tag[:3].upper()}{int(tag, 16) % 10**7:07d}", f"sp{tag}"
    before = merge_batch(
        db_session,
        [_merging_job(db_session, run, insert_scraped_track(conn, f"Old {tag}", "Zero"), 119.0,
                      {"spotify_id": spotify})],
    )[0].silver_track_id  # fmt: skip
    batch = [
        _merging_job(db_session, run, insert_scraped_track(conn, f"E {tag}", "Five"), 125.0,
                     {"isrc": isrc}),
        _merging_job(db_session, run, insert_scraped_track(conn, f"F {tag}", "Six"), 126.0,
                     {"isrc": isrc}),
        _merging_job(db_session, run, insert_scraped_track(conn, f"G {tag}", "Seven"), 127.0,
                     {"spotify_id": spotify}),
        _merging_job(db_session, run, insert_scraped_track(conn, f"H {tag}", "Eight"), 128.0),
    ]  # fmt: skip
    e, f, g, h = (r.silver_track_id for r in merge_batch(db_session, batch))
    assert e == f and g == before and h not in (None, e, before)
    rows = _silver(
        db_session,
        "bpm, (SELECT count(*) FROM silver_track_sightings x WHERE x.silver_id = t.id)",
        [e, g, h],
    )
    # The later job of each pair wrote last (replays override; merges keep the more confident
    # value, and all of these are 0.99): each track lists the other bronze row as a source.
    assert rows[e][1] == 1 and rows[g][1] == 1 and rows[h] == (Decimal("128.00"), 0)
