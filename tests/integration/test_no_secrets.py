"""Issue 15: no credential anywhere after a real enrichment logged at INFO.

A worker of its own (``--loglevel INFO``, as docker-compose runs workers, so httpx logs every
request URL) with a unique fake credential for every provider setting that holds one, against
the sandbox (which, like the real APIs, takes Last.fm/GetSongBPM keys in the query string,
Discogs' in an ``Authorization: Discogs token=`` header and OAuth client secrets in Basic auth,
see docs/providers.md). After the run: the worker log, a ``pg_dump`` of the test database and
every Redis key and value the session uses are searched for each credential: zero hits.

Its own broker key prefix, so the session worker (``--loglevel WARNING``, sandbox credentials)
cannot take its tasks; it enqueues from a subprocess with the same environment for the same
reason (this process's Celery app is bound to the session prefix).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib
from sqlalchemy import Engine, text

from providers.settings import SETTINGS_CLASSES
from tests.integration.conftest import BROKER_DB, ROOT, catalogue_rows, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _credentials() -> dict[str, str]:
    """SONGNODES_<P>_{CLIENT_ID,CLIENT_SECRET,API_KEY} -> a value unique to this run."""
    run = uuid.uuid4().hex[:10]
    creds = {}
    for name in SETTINGS_CLASSES:
        for field in ("CLIENT_ID", "CLIENT_SECRET", "API_KEY"):
            creds[f"SONGNODES_{name.upper()}_{field}"] = f"fake{field.lower()}{name}{run}"
    return creds


def _redis_dump(url: str) -> str:
    """Every key and value of one Redis database as text (keys with their values by type)."""
    r = redis_lib.Redis.from_url(url)
    parts: list[str] = []
    for key in r.scan_iter(count=1000):
        kind = r.type(key).decode()
        if kind == "string":
            value: Any = r.get(key)
        elif kind == "list":
            value = r.lrange(key, 0, -1)
        elif kind == "hash":
            value = r.hgetall(key)
        elif kind == "set":
            value = r.smembers(key)
        elif kind == "zset":
            value = r.zrange(key, 0, -1, withscores=True)
        elif kind == "stream":
            value = r.xrange(key)
        else:
            value = kind
        parts.append(f"{key!r} {value!r}")
    return "\n".join(parts)


def test_real_enrichment_at_info_leaves_no_credential_anywhere(
    pipeline_env: dict[str, str], engine: Engine, db_url: str, sandbox: Any, tmp_path: Path
) -> None:
    creds = _credentials()
    prefix = f"sn-secrets-{uuid.uuid4().hex[:8]}:"
    env = pipeline_env | creds | {"SONGNODES_BROKER_KEYPREFIX": prefix}
    log_path = tmp_path / "worker.log"
    from pipeline.runtime import ALL_QUEUES

    # Every provider must be asked: the default waterfall never reaches GetSongBPM, Deezer or
    # Tidal. Three fields ask all their providers at once (parallel) for this run; restored after.
    waterfall = {
        "genre": ("lastfm", "discogs", "beatport", "spotify"),
        "bpm": ("getsongbpm", "deezer", "beatport", "spotify"),
        "key": ("tidal", "beatport", "spotify", "acousticbrainz"),
    }
    columns = (
        ", ".join(f"priority_{i}_provider, priority_{i}_confidence" for i in range(1, 5))
        + ", waterfall_mode"
    )
    with engine.begin() as conn:
        saved = {
            f: conn.execute(
                text(f"SELECT {columns} FROM metadata_enrichment_config WHERE metadata_field = :f"),
                {"f": f},
            )
            .one()
            ._asdict()
            for f in waterfall
        }
        for f, providers in waterfall.items():
            sets = ", ".join(
                f"priority_{i}_provider = :p{i}, priority_{i}_confidence = 0.5"
                for i in (1, 2, 3, 4)
            )
            conn.execute(
                text(f"UPDATE metadata_enrichment_config SET {sets}, waterfall_mode = 'parallel'"
                     " WHERE metadata_field = :f"),
                {"f": f} | {f"p{i}": p for i, p in enumerate(providers, 1)},
            )  # fmt: skip

    with log_path.open("ab") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tasks", "worker", "-Q", ",".join(ALL_QUEUES),
             "-c", "2", "-P", "prefork", "--without-gossip", "--without-mingle",
             "-n", f"secrets-{uuid.uuid4().hex[:6]}@%h", "--loglevel", "INFO"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        wait_for(lambda: b"ready." in log_path.read_bytes(), 60, "the INFO worker to start")
        before = sandbox.stats()
        rows = catalogue_rows(6, offset=600)  # offsets of other tests: < 460
        tag = f"it:secrets:{uuid.uuid4().hex[:8]}"
        envelopes = [
            {
                "kind": "track",
                "source": "it-secrets",
                "source_url": f"https://example.test/{tag}/{i}",
                "scraper_version": "1",
                "artist_name": row["artist"],
                "track_title": row["title"],
                "raw_json": {"isrc": row["isrc"], "n": i},
            }
            for i, row in enumerate(rows)
        ]
        enqueue = (
            "import json, sys\nfrom tasks.ingest import ingest_batch\n"
            "ingest_batch.apply_async((json.loads(sys.argv[1]), sys.argv[2], 'task'))\n"
        )
        subprocess.run(
            [sys.executable, "-c", enqueue, json.dumps(envelopes), tag],
            cwd=ROOT, env=env, check=True, timeout=60,
        )  # fmt: skip

        def done() -> bool:
            with engine.connect() as conn:
                row = conn.execute(
                    text(
                        "SELECT count(*) AS n, count(*) FILTER (WHERE run_status = 'running') AS o"
                        " FROM enrichment_pipeline_runs WHERE triggered_by = :t"
                    ),
                    {"t": tag},
                ).one()
            return bool(row.n) and row.o == 0

        wait_for(done, 180, f"run {tag}")
    finally:
        with engine.begin() as conn:
            for f, values in saved.items():
                sets = ", ".join(f"{k} = :{k}" for k in values)
                conn.execute(
                    text(f"UPDATE metadata_enrichment_config SET {sets} WHERE metadata_field = :f"),
                    values | {"f": f},
                )
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(10)
    after = sandbox.stats()
    called = {p for p in after if sum(after[p].values()) > sum(before.get(p, {}).values())}
    # The credentials were really sent: the key-in-query, key-in-header and OAuth providers.
    expected = {"lastfm", "getsongbpm", "discogs", "spotify", "beatport", "tidal", "deezer"}
    assert expected <= called, called

    logs = log_path.read_text(errors="replace")
    assert "HTTP Request: GET" in logs  # httpx's INFO request lines are there ...
    assert "api_key=***" in logs  # ... with the query-string key redacted

    pg_dump = shutil.which("pg_dump") or next(Path("/usr/lib/postgresql").glob("*/bin/pg_dump"))
    dump = subprocess.run(
        [str(pg_dump), "--data-only", db_url.replace("+psycopg", "")],
        capture_output=True,
        check=True,
        timeout=120,
    ).stdout.decode("utf-8", "replace")
    assert "it-secrets" in dump  # the dump holds this run's rows
    base = pipeline_env["REDIS_URL"].rsplit("/", 1)[0]
    redis_text = _redis_dump(pipeline_env["REDIS_URL"]) + _redis_dump(f"{base}/{BROKER_DB}")

    tokens = set(re.findall(r"sandbox-token-\d+", json.dumps(sandbox.stats())))
    hits = {
        (where, name)
        for name, value in creds.items()
        for where, haystack in (("log", logs), ("pg_dump", dump), ("redis", redis_text))
        if value in haystack
    } | {(where, t) for t in tokens for where, h in (("log", logs), ("pg_dump", dump)) if t in h}
    assert hits == set()
