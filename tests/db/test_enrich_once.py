"""Issue 17 on real PostgreSQL (each test rolled back): identity before fan-out, freshness per
field in SQL, reuse lineage, single flight, and replay/--force still asking again.

Provider answers are ``LookupResult`` values in the shape ``providers.contract`` defines (the
same as tests/db/test_batch_enrich_merge.py); the waterfall is the seeded one of migration 004.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from pipeline.enrich import LookupOutcome, Next, create_jobs, lookup_inputs, record_outcomes
from pipeline.freshness import fresh_fields
from pipeline.merge import merge_batch
from pipeline.runs import load_plan, start_run
from pipeline.singleflight import release, release_orphans
from pipeline.trace import trace_field
from providers.contract import FieldValue, LookupResult, RawResponse
from tests.db._helpers import insert_bronze_track

BPM = 126.0


def _answer(provider: str, fields: list[str]) -> LookupResult:
    """Every provider finds the track and knows its BPM (0.99) and key (0.95)."""
    values = {}
    if "bpm" in fields:
        values["bpm"] = FieldValue("bpm", BPM, 0.99, {"bpm": BPM})
    if "key" in fields:
        values["key"] = FieldValue("key", "8A", 0.95, {"key": "8A"})
    return LookupResult(
        provider,
        "found",
        values=values,
        responses=[RawResponse(f"GET https://{provider}.test/x", {"q": "x"}, 200, {}, 1.0)],
    )


def _drive(
    session: Session,
    nxt: Next,
    calls: Counter[str] | None = None,
    fail: frozenset[str] = frozenset(),
) -> list[str]:
    """Run the pipeline in process: every planned lookup answered (providers in ``fail`` give
    up, as after their last retry), every merge merged, every released follower planned;
    returns the merged job ids. ``calls`` counts lookups asked."""
    merged: list[str] = []
    while nxt:
        step = Next()
        for provider, job_ids in sorted(nxt.lookups.items()):
            inputs = lookup_inputs(session, job_ids, provider)
            if calls is not None:
                calls[provider] += len(inputs)
            outcomes = [
                LookupOutcome(li, error="gave up after 5 attempts")
                if provider in fail
                else LookupOutcome(li, result=_answer(provider, li.fields))
                for li in inputs
            ]
            step.extend(record_outcomes(session, outcomes, attempts=1))
        if nxt.merges:
            merge_batch(session, nxt.merges)
            merged += nxt.merges
            step.extend(release(session, nxt.merges))
        nxt = step
    return merged


def _bronze(session: Session, artist: str, title: str, source: str = "bench", **raw: Any) -> str:
    return str(
        insert_bronze_track(
            session.connection(),
            source=source,
            source_url=f"https://example.test/{uuid.uuid4()}",
            raw_json=json.dumps({"artist": artist, "title": title, **raw}),
            artist_name=artist,
            track_title=title,
        )
    )


def _job(session: Session, run: str, bronze: str) -> Any:
    return session.execute(
        text(
            "SELECT id::text, status, silver_track_id::text AS silver, reused_fields, "
            "reuse_silver_id::text AS reuse, waits_for::text AS waits "
            "FROM enrichment_jobs WHERE run_id = :r AND bronze_track_id = :b"
        ),
        {"r": run, "b": bronze},
    ).one()


def _first_sighting(session: Session, artist: str, title: str) -> tuple[str, str, Counter[str]]:
    run = str(start_run(session, "incremental", "test"))
    bronze = _bronze(session, artist, title)
    calls: Counter[str] = Counter()
    _drive(session, create_jobs(session, run, [bronze]), calls)
    job = _job(session, run, bronze)
    assert job.status == "merged" and job.silver
    return run, job.silver, calls


def test_a_fresh_known_track_plans_no_lookup_and_is_linked_with_reuse_lineage(
    db_session: Session,
) -> None:
    """The second sighting of a track (another setlist, same names) asks no provider: its job
    goes straight to merge, is linked to the first sighting's silver track, and the
    transformations log gets one reuse row per field, naming the first run; trace shows it."""
    tag = uuid.uuid4().hex[:6]
    run1, silver, calls1 = _first_sighting(db_session, f"Reuse {tag}", "Song")
    assert sum(calls1.values()) > 0
    run2 = str(start_run(db_session, "incremental", "test"))
    bronze2 = _bronze(db_session, f"Reuse {tag}", "Song (Original Mix)")
    nxt = create_jobs(db_session, run2, [bronze2])
    assert not nxt.lookups
    job = _job(db_session, run2, bronze2)
    assert nxt.merges == [job.id] and job.reuse == silver
    plan = load_plan(db_session, run2)
    assert set(job.reused_fields) == set(plan.rules)
    (result,) = merge_batch(db_session, nxt.merges)
    assert result.linked_only and result.silver_track_id == silver  # no gold upsert sent
    job = _job(db_session, run2, bronze2)
    assert job.status == "merged" and job.silver == silver
    extra = db_session.execute(
        text("SELECT bronze_id::text FROM silver_track_sightings WHERE silver_id = :s"),
        {"s": silver},
    ).scalars().all()
    assert extra == [bronze2]  # a sighting besides the first: the track's own bronze row is not one
    rows = db_session.execute(
        text(
            "SELECT transformation_type, metadata_field, transformation_rules FROM "
            "enrichment_transformations WHERE run_id = :r"
        ),
        {"r": run2},
    ).all()
    assert all(r.transformation_type == "merge" for r in rows)  # no enrichment row at all
    reuse = [r for r in rows if (r.transformation_rules or {}).get("reuse")]
    per_field = Counter(r.metadata_field for r in reuse)
    # one reuse row per reused field, names included: the sighting's own spelling ("Original
    # Mix") is not written over the track's, and no merge row claims it
    assert set(per_field) == set(plan.rules) and set(per_field.values()) == {1}
    assert len(rows) == len(reuse)
    names = db_session.execute(
        text(
            "SELECT s.track_title, p.last_modified_run_id::text AS run "
            "FROM silver_enriched_tracks s "
            "JOIN field_provenance p ON p.silver_track_id = s.id "
            "AND p.metadata_field = 'track_title' WHERE s.id = :s"
        ),
        {"s": silver},
    ).one()
    assert names.track_title == "Song" and names.run == run1
    assert all(r.transformation_rules["reused_from_run_id"] == run1 for r in reuse)
    decisions = trace_field(db_session, silver, "bpm").decisions
    assert decisions[-1].run_id == run2
    assert decisions[-1].rules["reason"] == f"reused from run {run1}"
    assert decisions[-1].value == BPM and not decisions[-1].changed


def test_a_stale_field_is_the_only_one_asked_again(db_session: Session) -> None:
    """bpm fresh for one day, checked two days ago: the next sighting asks only the providers
    the bpm waterfall plans, each for the fields it serves, and reuses every other field."""
    tag = uuid.uuid4().hex[:6]
    _, silver, _ = _first_sighting(db_session, f"Stale {tag}", "Song")
    db_session.execute(
        text(
            "UPDATE metadata_enrichment_config SET fresh_for = '1 day' "
            "WHERE metadata_field = 'bpm'"
        )
    )
    db_session.execute(
        text(
            "UPDATE silver_field_checks SET checked_at = now() - interval '2 days' "
            "WHERE silver_track_id = :s AND metadata_field = 'bpm'"
        ),
        {"s": silver},
    )
    run2 = str(start_run(db_session, "incremental", "test"))
    plan = load_plan(db_session, run2)
    assert fresh_fields(db_session, run2, [silver])[silver] == set(plan.rules) - {"bpm"}
    bronze = _bronze(db_session, f"Stale {tag}", "Song")
    nxt = create_jobs(db_session, run2, [bronze])
    first_bpm = plan.rules["bpm"].providers()[0]
    assert set(nxt.lookups) == {first_bpm}
    job = _job(db_session, run2, bronze)
    assert "bpm" not in job.reused_fields and job.reuse == silver
    calls: Counter[str] = Counter()
    _drive(db_session, nxt, calls)
    assert calls == Counter({first_bpm: 1})  # met at priority 1: nothing else asked
    checked = db_session.execute(
        text(
            "SELECT checked_run_id::text FROM silver_field_checks "
            "WHERE silver_track_id = :s AND metadata_field = 'bpm'"
        ),
        {"s": silver},
    ).scalar_one()
    assert checked == run2  # the new answer is fresh again


def test_a_field_chosen_under_an_older_configuration_is_stale(db_session: Session) -> None:
    """Raising the key waterfall's first threshold makes key stale (its config hash changed);
    a change to another field's row leaves key's freshness alone."""
    tag = uuid.uuid4().hex[:6]
    _, silver, _ = _first_sighting(db_session, f"Config {tag}", "Song")
    db_session.execute(
        text(
            "UPDATE metadata_enrichment_config SET priority_1_confidence = 0.99 "
            "WHERE metadata_field = 'key'"
        )
    )
    run2 = str(start_run(db_session, "incremental", "test"))
    fresh = fresh_fields(db_session, run2, [silver])[silver]
    assert "key" not in fresh and "bpm" in fresh
    same = db_session.execute(
        text(
            "SELECT field_config_hash(c1) = field_config_hash(c1 || '{\"field_description\": 1}'),"
            " field_config_hash(c1) = "
            "   field_config_hash(c1 || '{\"waterfall_mode\": \"parallel\"}')"
            " FROM (SELECT to_jsonb(c) AS c1 FROM metadata_enrichment_config c "
            "WHERE metadata_field = 'key') x"
        )
    ).one()
    assert tuple(same) == (True, False)  # a description is not configuration; the mode is


def test_fresh_for_null_is_for_ever_and_an_interval_expires(db_session: Session) -> None:
    got = db_session.execute(
        text(
            "SELECT field_check_is_fresh(now() - interval '10 years', field_config_hash(c), c),"
            " field_check_is_fresh(now() - interval '2 days', field_config_hash(c),"
            "   c || '{\"fresh_for\": \"1 day\"}'),"
            " field_check_is_fresh(now() - interval '2 hours', field_config_hash(c),"
            "   c || '{\"fresh_for\": \"1 day\"}'),"
            " field_check_is_fresh(now(), 'other', c), field_check_is_fresh(now(), 'x', NULL)"
            " FROM (SELECT to_jsonb(m) AS c FROM metadata_enrichment_config m "
            "WHERE metadata_field = 'bpm') x"
        )
    ).one()
    assert tuple(got) == (True, False, True, False, False)


def test_sightings_of_a_new_track_arriving_together_make_one_set_of_lookups(
    db_session: Session,
) -> None:
    """Three sightings in one batch and two more in another run before the first is merged:
    only the first job has lookups, the others wait for it in the database; once it merges,
    every sighting is merged into the same silver track without a single further lookup."""
    tag = uuid.uuid4().hex[:6]
    run1 = str(start_run(db_session, "incremental", "test"))
    batch1 = [_bronze(db_session, f"Flight {tag}", "Hit") for _ in range(3)]
    nxt1 = create_jobs(db_session, run1, batch1)
    jobs1 = [_job(db_session, run1, b) for b in batch1]
    (leader,) = [j for j in jobs1 if j.waits is None]
    assert {j for js in nxt1.lookups.values() for j in js} == {leader.id}
    run2 = str(start_run(db_session, "incremental", "test"))
    batch2 = [_bronze(db_session, f"Flight {tag}", "Hit") for _ in range(2)]
    nxt2 = create_jobs(db_session, run2, batch2)
    assert not nxt2  # nothing to enqueue: they wait
    waiting = [j for j in jobs1 if j is not leader] + [_job(db_session, run2, b) for b in batch2]
    assert {w.waits for w in waiting} == {leader.id}
    assert {w.status for w in waiting} == {"enriching"}  # the runs stay open
    calls: Counter[str] = Counter()
    merged = _drive(db_session, nxt1, calls)
    assert set(calls.values()) == {1}  # each provider asked once: the leader's rounds
    follower_lookups = db_session.execute(
        text("SELECT count(*) FROM enrichment_lookups WHERE job_id = ANY(CAST(:j AS uuid[]))"),
        {"j": [w.id for w in waiting]},
    ).scalar_one()
    assert follower_lookups == 0
    assert len(merged) == 5
    silver = _job(db_session, run1, batch1[0]).silver
    assert silver
    done = [_job(db_session, run1, b) for b in batch1] + [_job(db_session, run2, b) for b in batch2]
    assert {d.status for d in done} == {"merged"} and {d.silver for d in done} == {silver}
    flights = db_session.execute(
        text("SELECT count(*) FROM enrichment_flights WHERE identity_key LIKE :k"),
        {"k": f"flight {tag}%"},
    ).scalar_one()
    assert flights == 0
    status = db_session.execute(
        text("SELECT array_agg(run_status) FROM enrichment_pipeline_runs WHERE id IN (:a, :b)"),
        {"a": run1, "b": run2},
    ).scalar_one()
    assert set(status) == {"completed"}


def test_followers_of_a_failed_leader_plan_again_with_a_new_leader(db_session: Session) -> None:
    """A leader that ends failed (here: its run reaped) releases its followers through the
    orphan sweep: one of them takes the flight and looks up, the other waits for it."""
    tag = uuid.uuid4().hex[:6]
    run = str(start_run(db_session, "incremental", "test"))
    bronzes = [_bronze(db_session, f"Orphan {tag}", "Hit") for _ in range(3)]
    create_jobs(db_session, run, bronzes)
    jobs = [_job(db_session, run, b) for b in bronzes]
    (leader,) = [j for j in jobs if j.waits is None]
    db_session.execute(
        text("UPDATE enrichment_jobs SET status = 'failed' WHERE id = :j"), {"j": leader.id}
    )
    nxt = release_orphans(db_session)
    after = [_job(db_session, run, b) for b in bronzes if _job(db_session, run, b).id != leader.id]
    (second,) = [j for j in after if j.waits is None]
    (third,) = [j for j in after if j.waits is not None]
    assert {j for js in nxt.lookups.values() for j in js} == {second.id}
    assert third.waits == second.id
    _drive(db_session, nxt)
    merged = {_job(db_session, run, b).silver for b in bronzes if b}
    assert len(merged - {None}) == 1


def test_force_and_replays_still_ask_every_provider(db_session: Session) -> None:
    """A live (--force) or stored replay of a fresh known track plans the full round one, as
    before issue 17, and a stored replay renews no freshness check."""
    tag = uuid.uuid4().hex[:6]
    run1, silver, _ = _first_sighting(db_session, f"Force {tag}", "Song")
    bronze = db_session.execute(
        text("SELECT bronze_id::text FROM silver_enriched_tracks WHERE id = :s"), {"s": silver}
    ).scalar_one()
    plan = load_plan(db_session, run1)
    from pipeline.waterfall import next_lookups

    round_one = set(next_lookups(plan, [], [], None))
    checks = text(
        "SELECT checked_run_id::text FROM silver_field_checks "
        "WHERE silver_track_id = :s AND metadata_field = 'bpm'"
    )
    for mode in ("stored", "live"):
        run = str(start_run(db_session, "replay", "test"))
        nxt = create_jobs(db_session, run, [bronze], replay_mode=mode)
        assert set(nxt.lookups) == round_one
        assert _job(db_session, run, bronze).reused_fields is None
        _drive(db_session, nxt)
        checked = db_session.execute(checks, {"s": silver}).scalar_one()
        # a stored replay re-reads old answers (the check stays run 1's); --force asks again
        assert checked == (run1 if mode == "stored" else run)
    hist = str(start_run(db_session, "replay", "test"))
    nxt = create_jobs(db_session, hist, [bronze], config_run_id=run1)
    assert set(nxt.lookups) == round_one  # time travel plans with the old snapshot, in full


def test_a_field_whose_provider_failed_is_not_fresh(db_session: Session) -> None:
    """bpm's first provider gives up on the first sighting (the others answer bpm, so it has a
    value): bpm is not checked (its answer is unknown, not negative) and the next sighting asks
    bpm's waterfall again; fields nobody failed stay fresh."""
    tag = uuid.uuid4().hex[:6]
    run1 = str(start_run(db_session, "incremental", "test"))
    plan = load_plan(db_session, run1)
    first_bpm = plan.rules["bpm"].providers()[0]
    bronze = _bronze(db_session, f"Failed {tag}", "Song")
    _drive(db_session, create_jobs(db_session, run1, [bronze]), fail=frozenset({first_bpm}))
    silver = _job(db_session, run1, bronze).silver
    run2 = str(start_run(db_session, "incremental", "test"))
    fresh = fresh_fields(db_session, run2, [silver])[silver]
    failed_fields = set(plan.fields_for(first_bpm))
    assert "bpm" in failed_fields and not fresh & failed_fields
    assert fresh  # the other fields were answered
    nxt = create_jobs(db_session, run2, [_bronze(db_session, f"Failed {tag}", "Song")])
    assert first_bpm in nxt.lookups


@pytest.fixture
def private_engine(postgres_available: None) -> Iterator[Engine]:
    """A database of this test's own: it commits (bronze is append-only, nothing can be
    removed), and the rolled-back tests count rows of the shared one."""
    from tests.conftest import engine_on, migrated_database

    with migrated_database("sn_flight") as url, engine_on(url) as eng:
        yield eng


def test_a_sighting_joining_a_flight_while_its_leader_merges_is_released(
    private_engine: Engine,
) -> None:
    """Committed transactions, two at once: a sighting joins a flight (its ingest not yet
    committed) while the leader's merge releases it. The release waits for the join to commit
    and plans the new follower too: no sighting is left waiting for a finished leader."""
    engine = private_engine
    tag = uuid.uuid4().hex[:6]
    with Session(engine) as s:
        run = str(start_run(s, "incremental", "test"))
        leader_bronze = _bronze(s, f"Race {tag}", "Hit")
        nxt = create_jobs(s, run, [leader_bronze])
        s.commit()
        _drive_lookups_only(s, nxt)
        s.commit()
    with Session(engine) as s:
        leader = _job(s, run, leader_bronze)
    joiner = Session(engine)
    run2 = str(start_run(joiner, "incremental", "test"))
    follower_bronze = _bronze(joiner, f"Race {tag}", "Hit")
    create_jobs(joiner, run2, [follower_bronze])  # joined the flight, not committed
    released: list[Next] = []

    def merge_leader() -> None:
        with Session(engine) as s:
            merge_batch(s, [leader.id])
            released.append(release(s, [leader.id]))
            s.commit()

    thread = threading.Thread(target=merge_leader)
    thread.start()
    time.sleep(0.5)  # the release is now waiting for the joiner's flight row lock
    assert thread.is_alive()
    joiner.commit()
    thread.join(10)
    follower = _job(joiner, run2, follower_bronze)
    joiner.close()
    with Session(engine) as s:
        silver = _job(s, run, leader_bronze).silver
    assert follower.waits is None and follower.reuse == silver
    assert released and follower.id in set(released[0].merges) | {
        j for js in released[0].lookups.values() for j in js
    }


def _drive_lookups_only(session: Session, nxt: Next) -> None:
    """Answer every lookup round of ``nxt``; leave the merges unmerged."""
    while nxt.lookups:
        step = Next()
        for provider, job_ids in sorted(nxt.lookups.items()):
            inputs = lookup_inputs(session, job_ids, provider)
            outcomes = [LookupOutcome(li, result=_answer(provider, li.fields)) for li in inputs]
            step.extend(record_outcomes(session, outcomes, attempts=1))
        nxt = Next(lookups=step.lookups)
