"""A name once resolved to a track is known the next time (migration 020, issue 17).

Providers resolve different spellings of one track to the same recording (the ISRC they
answer). Identity-first planning only knew a track's own identity key, so every later sighting
under the other spelling asked every provider again: in bench/sightings (20k rows; the catalogue
repeated with a ``(bench N)`` suffix, which the sandbox resolves to the original recording)
4,027 provider calls in a pass of pure re-scrapes. Merge now records the bronze name's key as an
alias of the track it was merged into; identity-first and merge find the track by it.
"""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

import tests.db.test_enrich_once as enrich_once
from pipeline.enrich import create_jobs
from pipeline.matching import identity_key
from pipeline.runs import start_run
from providers.contract import FieldValue, LookupResult

ISRC = "GBXYZ2600001"
_SHARED_ANSWER = enrich_once._answer


def _answer_with_isrc(provider: str, fields: list[str]) -> LookupResult:
    """The shared test answer (BPM, key) plus the ISRC every provider finds for the recording,
    whatever the spelling asked about."""
    result: LookupResult = _SHARED_ANSWER(provider, fields)
    if "isrc" in fields:
        result.values["isrc"] = FieldValue("isrc", ISRC, 0.99, {"isrc": ISRC})
    return result


def _sight(session: Session, artist: str, title: str, calls: Counter[str]) -> Any:
    run = str(start_run(session, "incremental", "test"))
    bronze = enrich_once._bronze(session, artist, title)
    enrich_once._drive(session, create_jobs(session, run, [bronze]), calls)
    return enrich_once._job(session, run, bronze)


def test_a_spelling_resolved_to_a_known_track_is_known_the_next_time(
    db_session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(enrich_once, "_answer", _answer_with_isrc)
    tag = uuid.uuid4().hex[:6]
    artist, title, other = f"Alias {tag}", "Night Drive", "Night Drive (bench 1)"
    first = Counter[str]()
    original = _sight(db_session, artist, title, first)
    assert original.status == "merged" and sum(first.values()) > 0

    second = Counter[str]()
    spelled = _sight(db_session, artist, other, second)
    assert sum(second.values()) > 0, "an unknown spelling is looked up"
    assert spelled.silver == original.silver, "the providers' ISRC merged it into the track"
    alias = db_session.execute(
        text("SELECT track_id::text FROM silver_track_aliases WHERE identity_key = :k"),
        {"k": identity_key(artist, other)},
    ).scalar_one_or_none()
    assert alias == original.silver

    third = Counter[str]()
    again = _sight(db_session, artist, other, third)
    assert sum(third.values()) == 0, "the spelling is known: no provider asked"
    assert again.reuse == original.silver and again.silver == original.silver
    own_key = db_session.execute(
        text("SELECT count(*) FROM silver_track_aliases WHERE identity_key = :k"),
        {"k": identity_key(artist, title)},
    ).scalar_one()
    assert own_key == 0, "a track's own key is never an alias"
