"""Intake throughput with hostile lines vs the same file all valid (issue 15).

``python -m bench.intake [--lines N] [--short]``: writes a JSON-lines file of N track envelopes
and a copy where 5% of the lines are hostile (malformed, 5000-level nesting, invalid UTF-8,
lone surrogates, NUL, wrong JSON types, missing fields, 20 KB junk), then runs each through
what ``songnodes ingest`` runs: the CLI's line reader (``_lines``) and ``encode_line``, then the
``ingest_batch`` task body per 200-line batch (validation, bronze bulk append or quarantine, a
pipeline run, enrichment jobs). Only the broker hop is left out: the task body is called in this
process and its enrichment messages go to kombu's in-memory transport, which nothing consumes,
so the figure is intake, not enrichment. The two files are ingested batch by batch in turn (so
both meet the same load on a shared machine), twice, into a throwaway database (fresh URLs per
pass, so nothing is a duplicate); the best pass of each counts.
ratio = hostile lines/s / valid lines/s (target >= 0.9).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import uuid
from pathlib import Path

from bench._common import Timer, bench_database, emit

__all__ = ["hostile_line", "main", "valid_line"]

BATCH = 200


def valid_line(i: int, run: str, rnd: random.Random) -> bytes:
    return json.dumps(
        {
            "kind": "track",
            "source": "bench-intake",
            "source_url": f"https://example.test/{run}/{i}",
            "source_track_id": None if i % 3 == 0 else f"t{i}",
            "scraper_version": "bench-1",
            "artist_name": f"Artist {rnd.randrange(5000)}",
            "track_title": f"Track {i} (Original Mix)",
            "raw_json": {"bpm": round(rnd.uniform(118, 176), 1), "key": "8A", "label": "Bench"},
        },
        ensure_ascii=False,
    ).encode()


def hostile_line(i: int, run: str, rnd: random.Random) -> bytes:
    """One of the report's hostile kinds (chosen by ``i``), unique per line."""
    good = valid_line(i, run, rnd)
    kinds = [
        lambda: good[: len(good) // 2],  # truncated
        lambda: b'{"kind": "track", "u": "%d", "raw_json": ' % i + b"[" * 5000 + b"]" * 5000 + b"}",
        lambda: good.replace(b"Track", b"Tr\xff\xfeck"),  # invalid UTF-8
        lambda: good.replace(b"Track", b"Tr\\ud800ck"),  # escaped lone surrogate
        lambda: good.replace(b"Track", b"Tr\\u0000ck"),  # NUL
        lambda: b"[%d, 2, 3]" % i,  # wrong JSON type
        lambda: good.replace(b'"artist_name"', b'"artist_nam"'),  # unknown/missing field
        lambda: b'{"junk": "%d%s"}' % (i, b"x" * 20_000),  # 20 KB junk object
    ]
    return kinds[i % len(kinds)]()


def _write(path: Path, n: int, run: str, hostile: bool) -> None:
    rnd = random.Random(7)
    every = 20  # 5%
    with path.open("wb") as fh:
        for i in range(n):
            make = hostile_line if hostile and i % every == every - 1 else valid_line
            fh.write(make(i, run, rnd) + b"\n")


def _paired(valid: Path, hostile: Path) -> tuple[float, float, int]:
    """Seconds for each file through the CLI reader and the task body, batch by batch in turn
    (valid batch i, hostile batch i, order swapped every batch): the machine is shared, and
    pairing makes both files meet the same load instead of whatever each pass happened to get."""
    from pipeline.cli.pipeline_cmds import _lines
    from pipeline.ingest import encode_line
    from tasks.ingest import ingest_batch

    tag = f"bench:{uuid.uuid4().hex[:8]}"
    spent = {valid: 0.0, hostile: 0.0}
    lines = {}
    for path in (valid, hostile):
        with Timer() as t:
            lines[path] = _lines(path)
        spent[path] += t.seconds
    quarantined = 0
    for n, start in enumerate(range(0, len(lines[valid]), BATCH)):
        for path in (valid, hostile) if n % 2 == 0 else (hostile, valid):
            with Timer() as t:
                batch = [encode_line(line) for line in lines[path][start : start + BATCH]]
                summary = ingest_batch.run(batch, tag, "cli")
            spent[path] += t.seconds
            if path == hostile:
                quarantined += summary["quarantined"]
    return spent[valid], spent[hostile], quarantined


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--short", action="store_true", help="CI: 10k lines")
    args = parser.parse_args(argv)
    if args.short:
        args.lines = min(args.lines, 10_000)

    saved = os.environ.pop("DATABASE_URL", None)  # always a throwaway database: this commits
    try:
        with bench_database() as url, tempfile.TemporaryDirectory() as tmp:
            from db.engine import dispose_engine
            from pipeline.runtime import use_memory_broker
            from tasks.app import app

            os.environ["DATABASE_URL"] = url
            dispose_engine()
            use_memory_broker(app)
            best = {"valid": float("inf"), "hostile": float("inf")}
            refused = 0
            for round_no in range(2):
                paths = []
                for name in ("valid", "hostile"):
                    paths.append(Path(tmp) / f"{name}-{round_no}.jsonl")
                    _write(paths[-1], args.lines, f"{name}-{round_no}", name == "hostile")
                valid_s, hostile_s, refused = _paired(*paths)
                best["valid"] = min(best["valid"], valid_s)
                best["hostile"] = min(best["hostile"], hostile_s)
                print(
                    f"pass {round_no + 1}: valid {args.lines / valid_s:,.0f} lines/s,"
                    f" hostile {args.lines / hostile_s:,.0f} lines/s"
                )
            dispose_engine()
    finally:
        os.environ.pop("DATABASE_URL", None)
        if saved is not None:
            os.environ["DATABASE_URL"] = saved
    valid_rate, hostile_rate = args.lines / best["valid"], args.lines / best["hostile"]
    print(f"all valid: {valid_rate:,.0f} lines/s; 5% hostile: {hostile_rate:,.0f} lines/s")
    print(f"hostile file: {refused} lines quarantined of {args.lines}")
    emit("intake", hostile_rate, "lines/s", valid_rate, hostile_rate / valid_rate)


if __name__ == "__main__":
    main()
