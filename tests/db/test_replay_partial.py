"""A partial replay (``fields_to_replay``) on real PostgreSQL (each test rolled back).

Pins issue #16's defect: ``merge_fields`` wrote the replayed columns but never re-scored the
track, so restoring a missing required field (BPM) left it ``needs_review`` and out of gold.
Lookups are answered in-process (``LookupOutcome`` with a ``LookupResult``, the shape every
provider client returns, ``providers/contract.py``); recording, merging and gold are the real
database steps.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from pipeline.enrich import LookupOutcome, Next, create_jobs, lookup_inputs, record_outcomes
from pipeline.gold import upsert_track_analytics
from pipeline.merge import merge_batch
from pipeline.replay import merge_fields
from pipeline.runs import start_run
from providers.contract import FieldValue, LookupResult
from tests.db._helpers import insert_scraped_track


def _value(name: str, tag: str) -> Any:
    return {
        "spotify_id": f"sp{tag}",
        "key": "8A",
        "genre": ["Techno"],
        "artist_name": f"Partial {tag}",
        "track_title": "Replayed",
        "bpm": 128.0,
        "isrc": "USRC17607839",
        "musicbrainz_id": str(uuid.uuid5(uuid.NAMESPACE_URL, tag)),
        "beatport_id": "1234567",
        "release_date": "2020-01-01",
        "duration_ms": 360000,
        "energy": 0.8,
        "danceability": 0.7,
        "valence": 0.4,
    }.get(name)


def _answer_rounds(session: Session, nxt: Next, tag: str, *, with_bpm: bool) -> list[str]:
    """Answer every round of the plan (every asked field the test knows, BPM only if
    ``with_bpm``) until the jobs are ready to merge; return the jobs to merge."""
    merges: list[str] = list(nxt.merges)
    pending = dict(nxt.lookups)
    while pending:
        step = Next()
        for provider, job_ids in sorted(pending.items()):
            outcomes = []
            for li in lookup_inputs(session, job_ids, provider):
                values = {
                    f: FieldValue(f, v, 0.99, v)
                    for f in li.fields
                    if (v := _value(f, tag)) is not None and (with_bpm or f != "bpm")
                }
                result = LookupResult(provider, "found" if values else "not_found", values)
                outcomes.append(LookupOutcome(li, result=result))
            step.extend(record_outcomes(session, outcomes, attempts=1))
        merges += step.merges
        pending = dict(step.lookups)
    return merges


def _track(session: Session, silver_id: str) -> Any:
    return session.execute(
        text(
            "SELECT bpm, validation_status, validation_errors, data_quality_score "
            "FROM silver_enriched_tracks WHERE id = :id"
        ),
        {"id": silver_id},
    ).one()


def _in_gold(session: Session, silver_id: str) -> bool:
    return bool(
        session.execute(
            text("SELECT count(*) FROM gold_track_analytics WHERE silver_track_id = :id"),
            {"id": silver_id},
        ).scalar_one()
    )


def test_partial_replay_restoring_a_required_field_re_scores_and_reaches_gold(
    db_session: Session,
) -> None:
    """Merged without BPM the track is needs_review (BPM required) and not in gold; a
    ``fields_to_replay=['bpm']`` replay that finds the BPM re-scores it (valid, no errors,
    a higher score) and the gold upsert the replay task triggers takes it."""
    tag = uuid.uuid4().hex[:8]
    bronze = insert_scraped_track(db_session.connection(), f"Partial {tag}", "Replayed")
    run = str(start_run(db_session, "manual", "test"))
    merges = _answer_rounds(db_session, create_jobs(db_session, run, [bronze]), tag, with_bpm=False)
    [first] = merge_batch(db_session, merges)
    assert first.silver_track_id
    silver_id = first.silver_track_id
    before = _track(db_session, silver_id)
    assert before.bpm is None and before.validation_status == "needs_review"
    assert [e["field"] for e in before.validation_errors] == ["bpm"]
    upsert_track_analytics(db_session, [silver_id])
    assert not _in_gold(db_session, silver_id)

    replay = str(start_run(db_session, "replay", "replay:test"))
    nxt = create_jobs(db_session, replay, [bronze], fields=["bpm"], replay_mode="stored")
    [job_id] = _answer_rounds(db_session, nxt, tag, with_bpm=True)
    result = merge_fields(db_session, job_id)
    assert result.silver_track_id == silver_id

    after = _track(db_session, silver_id)
    assert float(after.bpm) == 128.0
    assert after.validation_status == "valid"
    assert after.validation_errors == []
    assert after.data_quality_score > before.data_quality_score
    upsert_track_analytics(db_session, [silver_id])  # what tasks.replay.replay_jobs enqueues
    assert _in_gold(db_session, silver_id)


def test_partial_replay_keeps_warnings_of_fields_it_did_not_replay(db_session: Session) -> None:
    """Re-scoring a partial replay judges the whole track: a warning another field carries
    stays (and keeps the track at ``warning``), while the replayed field's old warning goes."""
    tag = uuid.uuid4().hex[:8]
    bronze = insert_scraped_track(db_session.connection(), f"Partial {tag}", "Replayed")
    run = str(start_run(db_session, "manual", "test"))
    merges = _answer_rounds(db_session, create_jobs(db_session, run, [bronze]), tag, with_bpm=False)
    [first] = merge_batch(db_session, merges)
    silver_id = first.silver_track_id
    db_session.execute(
        text(
            "UPDATE silver_enriched_tracks SET validation_warnings = CAST(:w AS jsonb) "
            "WHERE id = :id"
        ),
        {
            "w": '[{"field": "key", "warning": "kept"}, {"field": "bpm", "warning": "old"}]',
            "id": silver_id,
        },
    )
    replay = str(start_run(db_session, "replay", "replay:test"))
    nxt = create_jobs(db_session, replay, [bronze], fields=["bpm"], replay_mode="stored")
    [job_id] = _answer_rounds(db_session, nxt, tag, with_bpm=True)
    merge_fields(db_session, job_id)
    row = db_session.execute(
        text("SELECT validation_status, validation_warnings FROM silver_enriched_tracks "
             "WHERE id = :id"),
        {"id": silver_id},
    ).one()
    assert row.validation_warnings == [{"field": "key", "warning": "kept"}]
    assert row.validation_status == "warning"


def test_a_swept_partial_replay_job_is_merged_partially(db_session: Session) -> None:
    """Issue #16 defect (b): a partial replay job whose message was lost must come back as a
    partial replay chunk, never as a live lookup whose merge is a full one. The sweeper leaves
    replay runs' lookups alone (issue 20), ``stalled_replays`` finds the job as *partial*, and
    the partial merge that chunk runs gives the track its BPM with no second silver track made
    from the scraped names (which differ from the provider's, so a full merge of only ``bpm``
    would file the track under another identity)."""
    from pipeline.maintenance import find_stalled_work
    from pipeline.recovery import stalled_replays
    from pipeline.replay import merge_replayed

    tag = uuid.uuid4().hex[:8]
    bronze = insert_scraped_track(db_session.connection(), f"DJ {tag}", "Replayed (live)")
    run = str(start_run(db_session, "manual", "test"))
    merges = _answer_rounds(db_session, create_jobs(db_session, run, [bronze]), tag, with_bpm=False)
    [first] = merge_batch(db_session, merges)
    replay = str(start_run(db_session, "replay", "replay:test"))
    nxt = create_jobs(db_session, replay, [bronze], fields=["bpm"], replay_mode="stored")
    job_ids = sorted({j for js in nxt.lookups.values() for j in js})
    db_session.execute(
        text(
            "UPDATE enrichment_lookups SET updated_at = now() - interval '1 hour' "
            "WHERE job_id = ANY(CAST(:ids AS uuid[]))"
        ),
        {"ids": job_ids},
    )
    db_session.execute(
        text(
            "UPDATE enrichment_jobs SET updated_at = now() - interval '1 hour' "
            "WHERE id = ANY(CAST(:ids AS uuid[]))"
        ),
        {"ids": job_ids},
    )
    swept, _ = find_stalled_work(db_session, older_than_s=600)
    assert not {j for js in swept.lookups.values() for j in js} & set(job_ids)
    [stalled] = [r for r in stalled_replays(db_session, 600) if r.run_id == replay]
    assert stalled.partial and stalled.mode == "stored"
    assert sorted(stalled.job_ids) == job_ids
    to_merge = _answer_rounds(db_session, nxt, tag, with_bpm=True)
    [result] = merge_replayed(db_session, to_merge, partial=stalled.partial)
    assert str(result.silver_track_id) == str(first.silver_track_id)
    assert float(_track(db_session, str(first.silver_track_id)).bpm) == 128.0
