"""What-if simulation against live enrichment, on the pipeline bench's corpus, in one run.

    python -m bench.whatif            # 2,000 tracks
    python -m bench.whatif --short    # CI: 300 tracks, about a minute

1. Every field is set to ``parallel`` (so every provider's answer is stored) and the corpus
   (``bench.pipeline.envelopes``: catalogue tracks) goes through the real pipeline against the
   sandbox on the in-process worker (as ``bench.replay``): live tracks/s, first enqueue to last
   merge.
2. Today's configuration is simulated over that history (``pipeline.whatif``: reading the
   history included): simulation tracks/s, and per field fill, values and calls must be
   identical to what the run did.
3. ``suggest`` runs for a few fields; the suggestion saving the most calls is applied, and the
   simulation of it is the prediction.
4. The same catalogue tracks (new bronze rows, same names: the sandbox answers alike) go
   through the live pipeline again under the applied configuration; its fill per field and its
   calls are compared with the prediction (target: within 1%).

Last line: ``{"bench": "whatif", ..., "ratio": simulate_tracks_per_s / live_tracks_per_s}``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid
from typing import Any

from bench._common import bench_database

FIELDS = ("genre", "release_date", "bpm", "isrc")


def _runs(session: Any, tag: str) -> tuple[str, ...]:
    from sqlalchemy import text

    return tuple(
        str(r[0])
        for r in session.execute(
            text("SELECT id FROM enrichment_pipeline_runs WHERE triggered_by = :t"), {"t": tag}
        )
    )


def _live(n: int, offset_tag: str) -> tuple[str, float]:
    from bench.pipeline import envelopes
    from pipeline.cli.pipeline_cmds import run_ingest

    tag = f"bench-whatif:{offset_tag}:{uuid.uuid4().hex[:8]}"
    messages: list[Any] = list(envelopes(n, 0, tag.replace(":", "-")))
    started = time.perf_counter()
    if not run_ingest(messages, tag, wait=True, timeout_s=3600):
        raise SystemExit("live pipeline did not finish")
    return tag, time.perf_counter() - started


def _calls_by_provider(session: Any, runs: tuple[str, ...]) -> dict[str, int]:
    from sqlalchemy import text

    return {
        str(p): int(c or 0)
        for p, c in session.execute(
            text(
                "SELECT l.provider, sum(l.api_calls) FROM enrichment_lookups l JOIN "
                "enrichment_jobs j ON j.id = l.job_id WHERE j.run_id = ANY(CAST(:r AS uuid[])) "
                "GROUP BY 1 ORDER BY 1"
            ),
            {"r": list(runs)},
        )
    }


def _pct(a: float, b: float) -> float:
    return 0.0 if a == b else 100.0 * abs(a - b) / max(abs(b), 1e-9)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="300 tracks (CI)")
    parser.add_argument("--tracks", type=int, default=None)
    args = parser.parse_args(argv)
    n = args.tracks or (300 if args.short else 2_000)
    for key in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "REDIS_URL"):
        os.environ.pop(key, None)
    from providers.registry import available_providers
    from providers.sandbox import start_in_thread

    handle = start_in_thread()
    os.environ.update(handle.env)
    for name in available_providers():
        os.environ[f"SONGNODES_{name.upper()}_RATE_LIMIT_PER_SECOND"] = "100000"
    saved = os.environ.pop("DATABASE_URL", None)  # commits: always a throwaway database
    try:
        with bench_database() as url:
            os.environ["DATABASE_URL"] = url
            _run(n, 40.0 if args.short else 120.0)
    finally:
        handle.stop()
        if saved is not None:
            os.environ["DATABASE_URL"] = saved


def _run(n: int, budget_s: float) -> None:
    from sqlalchemy import text

    from db.engine import dispose_engine, session_scope
    from pipeline.lookups.clients import reset_clients
    from pipeline.whatif import Selection, load_history, simulate, suggest, today

    dispose_engine()
    reset_clients()
    with session_scope() as session:
        session.execute(text("UPDATE metadata_enrichment_config SET waterfall_mode = 'parallel'"))
    tag1, live_s = _live(n, "parallel")
    with session_scope() as session:
        runs1 = _runs(session, tag1)
        timings = []
        for _ in range(3):  # best of three (as timeit): one thread, sensitive to a busy machine
            started = time.perf_counter()
            history = load_history(session, Selection(run_ids=runs1))
            base = today(session)
            sim = simulate(base.plan(), base.prices(), history, session=session)
            timings.append(time.perf_counter() - started)
        sim_s = min(timings)
    live_rate = len(history) / live_s
    sim_rate = len(history) / sim_s
    print(f"live (parallel): {len(history)} tracks in {live_s:.1f} s = {live_rate:.1f} tracks/s, "
          f"{sim.history_calls} calls")  # fmt: skip
    print(f"simulate (reading history included): best {sim_s:.2f} s = {sim_rate:.0f} tracks/s "
          f"(runs: {', '.join(f'{t:.2f}' for t in timings)} s)")  # fmt: skip
    mismatched = [
        name
        for name, ff in sim.fields.items()
        if ff.filled != ff.history_filled or ff.changed or abs(ff.calls - ff.history_calls) > 1e-6
    ]
    identical = not mismatched and sim.calls == sim.history_calls and not sim.unknown_lookups
    print(f"simulated today's configuration vs the run: identical={identical} "
          f"(calls {sim.calls} vs {sim.history_calls}, unknown {sim.unknown_lookups}, "
          f"fields differing: {mismatched or 'none'})")  # fmt: skip

    best: Any = None
    with session_scope() as session:
        for name in FIELDS:
            found = suggest(session, base, history, name, budget_s=budget_s / len(FIELDS))
            saving = sim.calls - found.best[0].simulation.calls if found.best else 0
            print(f"suggest {name}: {found.evaluated} candidates in {found.seconds:.1f} s; "
                  + (f"best saves {saving} calls: {found.best[0].sql}" if found.best
                     else "nothing cheaper keeps fill and agreement"))  # fmt: skip
            if found.best and (best is None or saving > sim.calls - best.simulation.calls):
                best = found.best[0]
        if best is None:
            raise SystemExit("no suggestion to apply")
        session.execute(text(best.sql))
        # The prediction is a full enrichment of the same tracks under the applied waterfall.
        # Enrich-once (issue 17) would reuse every still-fresh field of the first run and ask
        # only for the changed one, so the comparison run treats every value as stale.
        session.execute(text("UPDATE metadata_enrichment_config SET fresh_for = interval '0'"))
    predicted = best.simulation
    tag2, live2_s = _live(n, "applied")
    with session_scope() as session:
        history2 = load_history(session, Selection(run_ids=_runs(session, tag2)))
        now = today(session)
        actual = simulate(now.plan(), now.prices(), history2, session=session)
        print(f"calls by provider, first run: {_calls_by_provider(session, runs1)}")
        runs2 = _runs(session, tag2)
        print(f"calls by provider, after applying: {_calls_by_provider(session, runs2)}")
    with session_scope() as session:  # the prediction's values, track by track
        applied = today(session)
        values = simulate(
            applied.plan(), applied.prices(), history, session=session, keep_values=True
        ).values
    predicted_by_name = {t.label(): values.get(t.bronze_id, {}) for t in history}
    live_by_name = {
        t.label(): {f: v for f, v in t.baseline_values.items() if f in applied.rows}
        for t in history2
    }
    differing = sorted(k for k, v in live_by_name.items() if predicted_by_name.get(k) != v)
    print(f"values: {len(differing)} of {len(live_by_name)} tracks differ from the prediction"
          + (f" (e.g. {differing[0]})" if differing else ""))  # fmt: skip
    worst_fill = max(
        _pct(predicted.fields[f].fill_rate, actual.fields[f].history_fill_rate)
        for f in predicted.fields
    )
    calls_pct = _pct(predicted.calls, actual.history_calls)
    print(f"applied {best.field}; live again: {len(history2)} tracks in {live2_s:.1f} s, "
          f"{actual.history_calls} calls; predicted {predicted.calls} calls "
          f"({calls_pct:.2f}% off); worst field fill difference {worst_fill:.2f}% "
          f"(predicted {best.field} fill {predicted.fields[best.field].fill_rate:.3f}, live "
          f"{actual.fields[best.field].history_fill_rate:.3f})")  # fmt: skip
    print(
        json.dumps(
            {
                "bench": "whatif",
                "value": round(sim_rate, 1),
                "unit": "simulated tracks/s",
                "baseline": round(live_rate, 2),
                "identical": identical,
                "applied_field": best.field,
                "calls_off_pct": round(calls_pct, 3),
                "values_differing": len(differing),
                "fill_off_pct": round(worst_fill, 3),
                "ratio": round(sim_rate / live_rate, 2),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
