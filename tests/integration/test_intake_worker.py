"""Issue 15 through a real worker and Redis: the hostile messages of the report end in
quarantine with their exact bytes (they ended in task FAILURE with nothing stored), and what
held keeps holding (pickle refused, the worker alive)."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import pytest
from sqlalchemy import Engine, text

from pipeline.envelope import MAX_ENVELOPE_BYTES
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration


def _quarantine_row(engine: Engine, raw: bytes) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT reason, raw_bytes, scope FROM ingest_quarantine WHERE content_sha256 = :s"
            ),
            {"s": hashlib.sha256(raw).hexdigest()},
        ).first()


def _wait_quarantined(engine: Engine, raw: bytes, what: str) -> Any:
    wait_for(lambda: _quarantine_row(engine, raw) is not None, 60, what)
    row = _quarantine_row(engine, raw)
    assert bytes(row.raw_bytes) == raw
    return row


def test_hostile_messages_through_the_worker_end_in_quarantine(worker: Any, engine: Engine) -> None:
    from tasks.ingest import ingest_batch, ingest_envelope

    tag = uuid.uuid4().hex
    marker = uuid.uuid4().int % 10**15
    ingest_envelope.delay([marker, 2, 3])
    ingest_envelope.delay(None)
    ingest_batch.delay({"not": f"a batch {tag}"})
    deep = '{"kind": "track", "tag": "' + tag + '", "raw_json": ' + "[" * 5000 + "]" * 5000 + "}"
    line = json.dumps({"kind": "track", "tag": tag}).encode() + b"\xed\xa0\x80"
    ingest_envelope.delay(deep)
    ingest_envelope.delay(line.decode("utf-8", "surrogateescape"))
    big = {"kind": "track", "tag": tag, "raw_json": {"x": "y" * (MAX_ENVELOPE_BYTES + 10)}}
    ingest_envelope.delay(big)

    row = _wait_quarantined(engine, f"[{marker}, 2, 3]".encode(), "the list envelope")
    assert row.reason == "an envelope must be a JSON object, got array"
    assert _wait_quarantined(engine, b"null", "the None envelope")
    batch = _wait_quarantined(
        engine, json.dumps({"not": f"a batch {tag}"}).encode(), "the non-list batch"
    )
    assert batch.scope == "batch"
    assert "nested deeper than" in _wait_quarantined(engine, deep.encode(), "the deep line").reason
    assert _wait_quarantined(engine, line, "the surrogate line").reason.startswith(
        "not valid UTF-8"
    )
    sent = json.dumps(big, ensure_ascii=False).encode()
    assert "byte limit" in _wait_quarantined(engine, sent, "the 20 MB envelope").reason


def test_pickle_is_refused_and_the_worker_lives_on(worker: Any, engine: Engine) -> None:
    """A pickle message is never deserialised (accept_content = json); the worker keeps
    consuming: the next JSON message is handled."""
    from tasks.app import app
    from tasks.ingest import ingest_envelope

    tag = uuid.uuid4().hex
    ingest_envelope.apply_async(([f"pickled {tag}"],), serializer="pickle")
    ingest_envelope.delay([f"after {tag}"])
    _wait_quarantined(engine, json.dumps([f"after {tag}"]).encode(), "the JSON message after")
    assert _quarantine_row(engine, json.dumps([f"pickled {tag}"]).encode()) is None
    assert app.control.ping(timeout=2)
    assert worker.proc.poll() is None


@pytest.mark.fuzz
def test_generated_batches_through_the_worker(worker: Any, engine: Engine) -> None:
    """The fuzz tier's task messages (dicts, JSON text, any JSON value, text carrying
    surrogateescape'd bytes, ``{"b64": ...}``) through Redis and a real worker: every message
    ends in bronze or in quarantine with its exact bytes. ``-m fuzz``; few cases (a round
    trip through the worker each)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from pipeline.ingest import decode_message
    from tasks.ingest import ingest_batch
    from tests.fuzz.conftest import EXAMPLES, FUZZ_SETTINGS, count
    from tests.fuzz.test_intake_fuzz import _in_bronze, _in_quarantine, task_messages
    from tests.integration.conftest import _run_done

    @settings(FUZZ_SETTINGS, max_examples=max(5, EXAMPLES // 12))
    @given(st.lists(task_messages(), min_size=1, max_size=5))
    def through_worker(batch: list[Any]) -> None:
        count("worker-path")
        tag = f"it-fuzz:{uuid.uuid4().hex[:8]}"
        ingest_batch.apply_async((batch, tag, "task"))
        wait_for(lambda: _run_done(engine, tag), 60, f"run {tag}")
        with engine.connect() as conn:
            for message in batch:
                raw = decode_message(message)[0]
                assert _in_quarantine(conn, raw) or _in_bronze(conn, raw), message

    through_worker()
