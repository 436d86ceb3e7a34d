"""Issue 15: one contract for every entrance, proven on real PostgreSQL with the hostile inputs
of the report (5000-level nesting, non-object messages, 20 MB, lone surrogates, a corrected
re-scrape, a raw CR inside a line, zero-width characters in names).

The CLI path is ``pipeline.ingest.ingest_batch`` over the lines ``songnodes ingest`` reads; the
task path is the Celery task functions called directly (``.run``); ``tests/integration``
sends some of the same through a real worker.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pipeline.envelope import MAX_ENVELOPE_BYTES
from pipeline.ingest import ingest_batch, ingest_messages


def _env(tag: str, **over: Any) -> dict[str, Any]:
    base = {
        "kind": "track",
        "source": "t-contract",
        "source_url": f"https://example.test/{tag}",
        "scraper_version": "1",
        "artist_name": "Flava D & Stush",
        "track_title": "Energy",
        "raw_json": {"tag": tag},
    }
    return base | over


def _quarantined(conn: Any, raw: bytes) -> Any:
    return conn.execute(
        text(
            "SELECT reason, raw_bytes, received_via, scope FROM ingest_quarantine"
            " WHERE content_sha256 = :sha"
        ),
        {"sha": hashlib.sha256(raw).hexdigest()},
    ).one_or_none()


@pytest.fixture(scope="module")
def intake_db(postgres_available: None) -> Iterator[Engine]:
    """A database of its own for the tests that commit (the task bodies do): the rolled-back
    db tier counts rows in the shared one and must not see these."""
    from tests.conftest import engine_on, migrated_database

    with migrated_database("sn_intake") as url, engine_on(url) as eng:
        yield eng


@pytest.fixture
def committed(intake_db: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """``DATABASE_URL`` (what the task bodies use) on :func:`intake_db`; yields its engine."""
    from db.engine import dispose_engine

    monkeypatch.setenv("DATABASE_URL", intake_db.url.render_as_string(hide_password=False))
    dispose_engine()
    try:
        yield intake_db
    finally:
        dispose_engine()


@pytest.fixture
def memory_broker() -> Iterator[None]:
    from tests.fuzz.conftest import memory_broker as broker

    with broker():
        yield


def test_5000_level_line_is_quarantined_and_the_other_lines_of_the_file_are_kept(
    db_session: Session,
) -> None:
    """The reported file: one 10 KB line nested 5000 deep among good and bad lines. Before, the
    RecursionError lost all of them; now the deep line is quarantined byte for byte."""
    tag = uuid.uuid4().hex
    deep = b'{"kind": "track", "raw_json": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    good = [json.dumps(_env(tag, raw_json={"i": i})).encode() for i in range(5)]
    lines = [good[0], deep, good[1], b"{oops", *good[2:]]
    result = ingest_batch(db_session, lines)
    assert (len(result.track_ids), result.quarantined) == (5, 2)
    row = _quarantined(db_session, deep)
    assert row is not None and bytes(row.raw_bytes) == deep
    assert "nested deeper than" in row.reason


def test_depth_limit_holds_for_a_decoded_value_too(db_session: Session) -> None:
    """A dict nested past the limit (the task path, already decoded) gets the same reason."""
    tag = uuid.uuid4().hex
    value: Any = {}
    for _ in range(100):
        value = {"x": value}
    result = ingest_messages(db_session, [_env(tag, raw_json=value)])
    assert result.quarantined == 1 and "nested deeper than 64 levels" in result.reasons[0]


@pytest.mark.parametrize(
    ("message", "stored", "reason"),
    [
        ([1, 2, 3], b"[1, 2, 3]", "an envelope must be a JSON object, got array"),
        (None, b"null", "an envelope must be a JSON object, got null"),
        (42, b"42", "an envelope must be a JSON object, got number"),
    ],
)
def test_ingest_envelope_with_a_non_object_is_quarantined_not_a_failure(
    committed: Engine, message: Any, stored: bytes, reason: str
) -> None:
    """`ingest_envelope.delay([1, 2, 3])` / `.delay(None)` ended in AttributeError with nothing
    stored. Now the task returns, the message is in quarantine as its JSON text, a run exists."""
    from tasks.ingest import ingest_envelope

    tag = f"t-{uuid.uuid4().hex}"
    summary = ingest_envelope.run(message, triggered_by=tag)
    assert summary["quarantined"] == 1
    with committed.connect() as conn:
        row = _quarantined(conn, stored)
        runs = conn.execute(
            text("SELECT count(*) FROM enrichment_pipeline_runs WHERE triggered_by = :t"),
            {"t": tag},
        ).scalar_one()
    assert row is not None and bytes(row.raw_bytes) == stored
    assert row.reason == reason and row.received_via == "task" and row.scope == "message"
    assert runs == 1


@pytest.mark.parametrize("shape", ["null", "object", "string"])
def test_a_batch_that_is_not_a_batch_is_quarantined_whole_with_a_failed_run(
    committed: Engine, shape: str
) -> None:
    """`ingest_batch.delay(None)`: kept as a batch (scope 'batch'), its run marked failed so
    `songnodes ingest --wait` stops at once (see the next test)."""
    from pipeline.cli.pipeline_cmds import BatchFailed, _runs_created
    from pipeline.ingest import json_text
    from tasks.ingest import ingest_batch as task

    tag = f"t-{uuid.uuid4().hex}"
    batch: Any = {"null": None, "object": {"kind": tag}, "string": f"not a list {tag}"}[shape]
    summary = task.run(batch, triggered_by=tag)
    assert summary["batch_quarantined"] is True
    raw = batch.encode() if isinstance(batch, str) else json_text(batch)
    with committed.connect() as conn:
        row = _quarantined(conn, raw)
        run = conn.execute(
            text(
                "SELECT run_status, critical_errors FROM enrichment_pipeline_runs"
                " WHERE triggered_by = :t"
            ),
            {"t": tag},
        ).one()
    assert row is not None and bytes(row.raw_bytes) == raw
    assert run.run_status == "failed"
    assert run.critical_errors[0].startswith("a batch must be a JSON array of messages")
    if batch is not None:  # b"null" may already be quarantined as a message (same bytes, once)
        assert row.scope == "batch" and row.reason == run.critical_errors[0]
    with pytest.raises(BatchFailed, match="a batch must be a JSON array"):
        _runs_created(tag)


def test_ingest_batch_of_non_objects_keeps_each(committed: Engine) -> None:
    """`ingest_batch.delay([1, 2, 3])`: three messages, three quarantine rows."""
    from tasks.ingest import ingest_batch as task

    marker = uuid.uuid4().int % 10**12
    summary = task.run([marker, marker + 1, [marker]], triggered_by="t-nonobjects")
    assert summary["quarantined"] == 3
    with committed.connect() as conn:
        for raw in (str(marker).encode(), str(marker + 1).encode(), f"[{marker}]".encode()):
            assert _quarantined(conn, raw) is not None, raw


def test_20_mb_envelope_through_the_task_is_quarantined_like_the_cli_does(
    committed: Engine,
) -> None:
    """The task stored a 20 MB dict in bronze while the CLI quarantined it: same limit now."""
    from tasks.ingest import ingest_envelope

    tag = uuid.uuid4().hex
    big = _env(tag, raw_json={"blob": "x" * (20 * 1024 * 1024)})
    summary = ingest_envelope.run(big, triggered_by=f"t-{tag}")
    assert summary["quarantined"] == 1 and summary["tracks"] == 0
    sent = json.dumps(big, ensure_ascii=False).encode()
    with committed.connect() as conn:
        row = _quarantined(conn, sent)
        in_bronze = conn.execute(
            text("SELECT count(*) FROM bronze_scraped_tracks WHERE source_url = :u"),
            {"u": big["source_url"]},
        ).scalar_one()
    assert row is not None and len(row.raw_bytes) == len(sent) > MAX_ENVELOPE_BYTES
    assert f"over the {MAX_ENVELOPE_BYTES}-byte limit" in row.reason
    assert in_bronze == 0


def test_lone_surrogate_line_keeps_the_same_bytes_through_the_task_and_the_cli(
    committed: Engine,
) -> None:
    """A line holding a UTF-8-encoded surrogate (ED A0 80, invalid UTF-8): the CLI keeps its
    bytes; the task given the same line as text (decoded with surrogateescape, Python's way to
    carry undecodable bytes in a str) now keeps the very same bytes, not a re-encoding."""
    from tasks.ingest import ingest_envelope

    tag = uuid.uuid4().hex
    line = json.dumps(_env(tag)).encode().replace(b"Energy", b"Ener\xed\xa0\x80gy")
    as_text = line.decode("utf-8", "surrogateescape")
    ingest_envelope.run(as_text, triggered_by=f"t-{tag}")
    with committed.connect() as conn:
        row = _quarantined(conn, line)
    assert row is not None and bytes(row.raw_bytes) == line
    assert row.reason.startswith("not valid UTF-8 at byte")
    with Session(committed) as session:  # the CLI path, same line: the same (deduplicated) row
        assert ingest_batch(session, [line]).quarantined == 1
        session.commit()
    with committed.connect() as conn:
        assert (
            conn.execute(
                text("SELECT count(*) FROM ingest_quarantine WHERE content_sha256 = :s"),
                {"s": hashlib.sha256(line).hexdigest()},
            ).scalar_one()
            == 1
        )


def test_escaped_and_real_lone_surrogates_are_refused_with_exact_text(db_session: Session) -> None:
    """``"\\ud800"`` in the JSON (ASCII bytes) is kept byte for byte; a str value holding a real
    lone surrogate (only possible from Python) is kept as the JSON text the broker carried."""
    tag = uuid.uuid4().hex
    escaped = json.dumps(_env(tag, track_title="\ud800")).encode("ascii")
    assert b"\\ud800" in escaped
    real = "\ud800" + tag
    result = ingest_messages(db_session, [escaped, real, _env(tag, artist_name="a\udcff")])
    assert result.quarantined == 3 and result.track_ids == []
    row = _quarantined(db_session, escaped)
    assert bytes(row.raw_bytes) == escaped and "lone surrogate (U+D800)" in row.reason
    carried = json.dumps(real).encode("ascii")
    assert json.loads(carried) == real
    assert _quarantined(db_session, carried) is not None


def test_corrected_rescrape_is_kept_and_exact_redelivery_adds_nothing(db_session: Session) -> None:
    """Same raw_json, corrected track_title: a new row holding the correction (it was counted
    as a duplicate). An exact redelivery of either, with NULL optional ids, adds nothing."""
    tag = uuid.uuid4().hex
    first = _env(tag, track_title="Enrgy", source_track_id=None)
    fixed = first | {"track_title": "Energy"}
    r1 = ingest_messages(db_session, [first])
    r2 = ingest_messages(db_session, [fixed])
    r3 = ingest_messages(db_session, [first, fixed, json.dumps(fixed)])
    assert len(r1.track_ids) == 1 and len(r2.track_ids) == 1
    assert r3.track_ids == [] and r3.duplicates == 3
    titles = db_session.execute(
        text("SELECT track_title FROM bronze_scraped_tracks WHERE source_url = :u"),
        {"u": first["source_url"]},
    ).scalars()
    assert sorted(titles) == ["Energy", "Enrgy"]


def test_every_stored_field_is_in_the_key(db_session: Session) -> None:
    """Each field a correction could touch makes a new row; scraped_at counts as sent
    (the same instant written two ways is the same value)."""
    tag = uuid.uuid4().hex
    base = _env(tag, scraped_at="2025-10-29T12:00:00Z")
    variants = [
        base,
        base | {"artist_name": "Flava D"},
        base | {"scraper_version": "2"},
        base | {"source_track_id": "42"},
        base | {"scraped_at": "2025-10-30T12:00:00Z"},
    ]
    assert len(ingest_messages(db_session, variants).track_ids) == 5
    same_instant = base | {"scraped_at": "2025-10-29T13:00:00+01:00"}
    assert ingest_messages(db_session, [same_instant]).duplicates == 1


def test_playlist_and_artist_rescrapes_keep_corrections(db_session: Session) -> None:
    tag = uuid.uuid4().hex
    playlist = {
        "kind": "playlist",
        "source": "t-contract",
        "source_url": f"https://example.test/set/{tag}",
        "scraper_version": "1",
        "playlist_name": "Live at Fabrik",
        "raw_json": {"tracks": [{"position": 1, "artist": "A", "title": "B"}]},
    }
    artist = {
        "kind": "artist",
        "source": "t-contract",
        "source_url": f"https://example.test/a/{tag}",
        "scraper_version": "1",
        "artist_name": f"Deadmau5 {tag}",
        "raw_json": {},
    }
    first = ingest_messages(db_session, [playlist, artist])
    again = ingest_messages(db_session, [playlist, artist])
    fixed = ingest_messages(
        db_session,
        [playlist | {"event_name": "Fabrik 2025"}, artist | {"aliases": ["Joel Zimmerman"]}],
    )
    assert (len(first.playlist_ids), len(first.artist_ids)) == (1, 1)
    assert again.duplicates == 2
    assert (len(fixed.playlist_ids), len(fixed.artist_ids)) == (1, 1)


def test_rows_from_before_011_still_deduplicate_among_themselves(db_session: Session) -> None:
    """Rows without fields_hash (written before migration 011, or by hand) keep their old key:
    NULLS NOT DISTINCT makes two such identical rows a unique violation, as before."""
    sql = text(
        "INSERT INTO bronze_scraped_tracks (source, source_url, scraper_version, raw_json,"
        " artist_name, track_title) VALUES ('t-legacy', :u, '1', '{}', 'A', 'B')"
    )
    url = f"https://example.test/legacy/{uuid.uuid4().hex}"
    db_session.execute(sql, {"u": url})
    with (
        pytest.raises(IntegrityError, match="uq_bronze_scraped_tracks_identity"),
        db_session.begin_nested(),
    ):
        db_session.execute(sql, {"u": url})


def test_bronze_keeps_names_exactly_and_silver_gets_them_clean(committed: Engine) -> None:
    """`Dead\\u200bmau5` was stored as `Deadmau5` and the original existed nowhere. Bronze now
    holds every envelope field as sent; silver (here the artist row) gets the cleaned name."""
    from tasks.ingest import ingest_batch as task

    tag = uuid.uuid4().hex[:8]
    sent = {
        "kind": "artist",
        "source": "t-contract",
        "source_url": f"https://example.test/raw/{tag}",
        "scraper_version": "1 ",
        "artist_name": f"Dead\u200bmau5 {tag}",
        "aliases": [f"Joel\u202e Zimmerman {tag}"],
        "raw_json": {"seen": "Dead\u200bmau5"},
    }
    task.run([sent], triggered_by=f"t-{tag}")
    with committed.connect() as conn:
        bronze = conn.execute(
            text(
                "SELECT artist_name, aliases, scraper_version, raw_json FROM"
                " bronze_scraped_artists WHERE source_url = :u"
            ),
            {"u": sent["source_url"]},
        ).one()
        silver = conn.execute(
            text(
                "SELECT canonical_name, aliases FROM silver_enriched_artists"
                " WHERE :b = ANY(bronze_ids)"
            ),
            {
                "b": conn.execute(
                    text("SELECT id FROM bronze_scraped_artists WHERE source_url = :u"),
                    {"u": sent["source_url"]},
                ).scalar_one()
            },
        ).one()
    assert bronze.artist_name == sent["artist_name"]
    assert bronze.aliases == sent["aliases"]
    assert bronze.scraper_version == "1 "
    assert bronze.raw_json == sent["raw_json"]
    assert silver.canonical_name == f"Deadmau5 {tag}"
    assert "\u200b" not in json.dumps(silver.aliases, ensure_ascii=False)


def test_lines_split_on_lf_only(tmp_path: Path, db_session: Session) -> None:
    """A raw CR between JSON tokens (valid JSON whitespace) and U+2028/U+2029 inside a string
    are data: the line is one envelope (it was split in two and quarantined as fragments).
    CRLF endings are tolerated."""
    from pipeline.cli.pipeline_cmds import _lines

    tag = uuid.uuid4().hex
    with_cr = json.dumps(_env(tag, raw_json={"n": 1})).replace(", ", ",\r ", 2).encode()
    with_seps = json.dumps(
        _env(tag, track_title="Energy\u2028Part\u2029Two", raw_json={"n": 2}), ensure_ascii=False
    ).encode()
    crlf = json.dumps(_env(tag, raw_json={"n": 3})).encode()
    path = tmp_path / "in.jsonl"
    path.write_bytes(with_cr + b"\n" + with_seps + b"\n" + crlf + b"\r\n\r\n")
    lines = _lines(path)
    assert lines == [with_cr, with_seps, crlf]
    result = ingest_batch(db_session, lines)
    assert (len(result.track_ids), result.quarantined) == (3, 0)
    stored = db_session.execute(
        text(
            "SELECT track_title FROM bronze_scraped_tracks WHERE raw_json->>'n' = '2'"
            " AND source_url = :u"
        ),
        {"u": f"https://example.test/{tag}"},
    ).scalar_one()
    assert stored == "Energy\u2028Part\u2029Two"


def test_unjsonable_python_value_is_kept_as_its_repr(db_session: Session) -> None:
    """A direct caller passing a value JSON cannot represent: refused, its repr kept."""
    result = ingest_messages(db_session, [{"kind": "track", "raw_json": {1, 2}}])
    assert result.quarantined == 1 and "not JSON-representable" in result.reasons[0]
    assert _quarantined(db_session, repr({"kind": "track", "raw_json": {1, 2}}).encode())


def test_valid_tracks_through_the_task_reach_bronze(committed: Engine, memory_broker: None) -> None:
    """The task path still appends good envelopes (dict and text) next to bad ones."""
    from tasks.ingest import ingest_batch as task

    tag = uuid.uuid4().hex
    summary = task.run(
        [_env(tag), json.dumps(_env(tag, raw_json={"n": 2})), None], triggered_by=f"t-{tag}"
    )
    assert (summary["tracks"], summary["quarantined"]) == (2, 1)


def test_a_5000_level_python_value_passed_directly_is_kept_not_raised(db_session: Session) -> None:
    """A direct caller can build a value too deep for JSON (the broker could not carry it):
    refused with its reason, a placeholder kept, and the rest of the batch goes on."""
    tag = uuid.uuid4().hex
    value: Any = {}
    for _ in range(5000):
        value = {"x": value}
    result = ingest_messages(db_session, [value, _env(tag)])
    assert result.quarantined == 1 and len(result.track_ids) == 1
    assert "RecursionError" in result.reasons[0]


def test_fields_hash_is_null_safe_and_instant_aware() -> None:
    """None, "" and "null" are three different values; one instant written in two offsets is
    one value; raw_json is not part of it (content_hash covers it)."""
    import datetime as dt

    from db.bronze import _TRACK_COLUMNS, fields_hash

    def key(**row: Any) -> str:
        return fields_hash(row, _TRACK_COLUMNS)

    assert (
        len({key(source_track_id=None), key(source_track_id=""), key(source_track_id="null")}) == 3
    )
    utc = dt.datetime(2025, 10, 29, 12, tzinfo=dt.UTC)
    plus1 = utc.astimezone(dt.timezone(dt.timedelta(hours=1)))
    assert key(scraped_at=utc) == key(scraped_at=plus1) != key(scraped_at=None)
    assert key(raw_json={"a": 1}) == key(raw_json={"a": 2})
    assert key(track_title="a\ud800") != key(track_title="a")  # the fallback encoder
