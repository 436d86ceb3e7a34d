"""What-if simulation and suggestions on real PostgreSQL, over answers from the real provider
clients against the sandbox (simulated values; shapes from the real APIs, providers/sandbox)."""

from __future__ import annotations

import csv
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from db.engine import dispose_engine
from pipeline.enrich import create_jobs
from pipeline.replay import process_jobs
from pipeline.runs import start_run
from pipeline.whatif import Selection, edit_field, load_history, simulate, suggest, today
from tests.db._helpers import insert_scraped_track

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "providers" / "sandbox" / "data" / "catalogue.csv"


@pytest.fixture(scope="module")
def sandbox_env(db_url: str) -> Iterator[Any]:
    from providers.registry import available_providers
    from providers.sandbox import start_in_thread

    handle = start_in_thread()
    saved = dict(os.environ)
    os.environ.update(handle.env)
    os.environ["DATABASE_URL"] = db_url
    dispose_engine()
    for name in available_providers():
        os.environ[f"SONGNODES_{name.upper()}_RATE_LIMIT_PER_SECOND"] = "100000"
    for key in ("REDIS_URL", "CELERY_BROKER_URL"):
        os.environ.pop(key, None)
    from tasks.enrich import reset_provider_instances

    reset_provider_instances()
    try:
        yield handle
    finally:
        from pipeline.lookups.clients import cached_clients

        for client in cached_clients():
            close = getattr(client, "close", None)
            if close is not None:
                close()  # live clients keep sockets to the sandbox open
        os.environ.clear()
        os.environ.update(saved)
        reset_provider_instances()
        dispose_engine()
        handle.stop()


def _catalogue(n: int) -> list[tuple[str, str]]:
    with CATALOGUE.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(line for line in fh if not line.startswith("#")))
    return [(r["artist"], r["title"]) for r in rows[:n]]


def _live_run(session: Session, bronzes: list[str]) -> str:
    from tasks.replay import live_lookup

    run = str(start_run(session, "manual", f"test-whatif-{uuid.uuid4().hex[:6]}"))
    nxt = create_jobs(session, run, bronzes)
    jobs = sorted({j for js in nxt.lookups.values() for j in js} | set(nxt.merges))
    process_jobs(session, jobs, live_lookup)
    return run


def _parallel(session: Session) -> None:
    session.execute(text("UPDATE metadata_enrichment_config SET waterfall_mode = 'parallel'"))


def _silver_state(session: Session) -> tuple[Any, ...]:
    return tuple(
        session.execute(
            text(
                "SELECT (SELECT count(*) FROM silver_enriched_tracks), "
                "(SELECT max(updated_at) FROM silver_enriched_tracks), "
                "(SELECT count(*) FROM enrichment_transformations), "
                "(SELECT count(*) FROM field_provenance), "
                "(SELECT count(*) FROM bronze_api_enrichments), "
                "(SELECT md5(string_agg(c::text, '|' ORDER BY metadata_field)) "
                " FROM metadata_enrichment_config c)"
            )
        ).one()
    )


def test_simulating_the_runs_own_configuration_repeats_the_run(
    db_session: Session, sandbox_env: Any
) -> None:
    """A parallel run against the sandbox, simulated with the configuration it used: for every
    field the same fill, no value changes, the same calls, no unknown answer, no call to the
    sandbox, and nothing written anywhere (silver, lineage, bronze, config)."""
    _parallel(db_session)
    bronzes = [insert_scraped_track(db_session.connection(), a, t) for a, t in _catalogue(25)]
    run = _live_run(db_session, bronzes)
    history = load_history(db_session, Selection(run_ids=(run,)))
    assert len(history) == 25
    base = today(db_session)
    before, requests = _silver_state(db_session), _requests(sandbox_env)
    sim = simulate(base.plan(), base.prices(), history, session=db_session)
    found = suggest(db_session, base, history, "genre", budget_s=20)
    assert _silver_state(db_session) == before and _requests(sandbox_env) == requests
    assert sim.unknown_lookups == 0 and sim.tracks == 25
    ran_calls = db_session.execute(
        text(
            "SELECT sum(l.api_calls) FROM enrichment_lookups l JOIN enrichment_jobs j "
            "ON j.id = l.job_id WHERE j.run_id = :r"
        ),
        {"r": run},
    ).scalar_one()
    assert sim.calls == sim.history_calls == ran_calls > 0
    merged = dict(
        db_session.execute(
            text(
                "SELECT metadata_field, count(*) FROM enrichment_transformations WHERE run_id = :r "
                "AND transformation_type = 'merge' AND provider_used NOT LIKE 'scraped:%' "
                "GROUP BY 1"
            ),
            {"r": run},
        ).all()
    )
    for name, ff in sim.fields.items():
        assert (ff.filled, ff.changed, ff.unknown) == (merged.get(name, 0), 0, 0), name
        assert abs(ff.calls - ff.history_calls) < 1e-9, name
    assert sum(ff.filled for ff in sim.fields.values()) > 100
    # lastfm is asked for genre only: a sequential genre waterfall that beatport fills saves it.
    assert found.best, "a cheaper genre configuration exists (lastfm is asked for genre only)"
    best = found.best[0].simulation
    assert best.calls < sim.calls and best.unknown_lookups == 0
    assert best.fields["genre"].filled >= sim.fields["genre"].filled
    assert all(best.fields[f].filled >= ff.filled for f, ff in sim.fields.items())


def _requests(handle: Any) -> int:
    return sum(sum(v.values()) for v in handle.stats().values())


def test_answers_history_lacks_are_unknown_never_guessed(
    db_session: Session, sandbox_env: Any
) -> None:
    """A sequential run asks lastfm only where beatport and spotify missed genre; a proposal
    putting lastfm first needs answers lastfm never gave: counted and reported unknown, and the
    genre of those tracks is neither filled, emptied nor changed."""
    db_session.execute(text("UPDATE metadata_enrichment_config SET waterfall_mode = 'sequential'"))
    bronzes = [insert_scraped_track(db_session.connection(), a, t) for a, t in _catalogue(12)]
    run = _live_run(db_session, bronzes)
    history = load_history(db_session, Selection(run_ids=(run,)))
    never = [t for t in history if "lastfm" not in t.answers]
    assert never, "beatport met genre for some tracks, so lastfm was not asked about them"
    proposal = edit_field(
        today(db_session), "genre", order=["lastfm", "beatport"], thresholds=[0.7, 0.9]
    )
    sim = simulate(proposal.plan(), proposal.prices(), history, session=db_session)
    genre = sim.fields["genre"]
    assert sim.unknown_lookups >= len(never) and sim.tracks_with_unknown >= len(never)
    assert genre.unknown == len(never)
    assert genre.filled + genre.unknown <= genre.tracks
    assert any("lastfm was never asked" in u for u in sim.unknown_examples)
    assert all(ex["bronze_id"] not in {t.bronze_id for t in never} for ex in genre.examples)


def test_apply_writes_the_row_and_the_next_run_snapshots_it(
    db_session: Session, sandbox_env: Any
) -> None:
    """The SQL a suggestion prints is what --apply runs; the next run's snapshot records it, so
    a replay with an earlier run's snapshot (time travel) still resolves the old way."""
    from pipeline.runs import run_snapshot
    from pipeline.whatif import apply_sql

    before_run = str(start_run(db_session, "manual", "before"))
    proposal = edit_field(
        today(db_session), "genre", order=["beatport", "discogs"], mode="sequential"
    )
    db_session.execute(text(apply_sql("genre", proposal.rows["genre"])))
    after_run = str(start_run(db_session, "manual", "after"))
    old, _ = run_snapshot(db_session, before_run)
    new, _ = run_snapshot(db_session, after_run)
    assert old["genre"]["priority_2_provider"] == "spotify"
    assert new["genre"]["priority_2_provider"] == "discogs"
    assert new["genre"]["priority_3_provider"] is None
    assert float(new["genre"]["priority_2_confidence"]) == 0.65  # discogs kept its threshold
    assert new["genre"]["updated_by"] == "songnodes waterfall suggest"


def test_bad_proposals_are_refused_with_a_reason(db_session: Session, tmp_path: Path) -> None:
    from pipeline.whatif import ConfigError, load_rows

    base = today(db_session)
    with pytest.raises(ConfigError, match="unknown provider 'nosuch'"):
        edit_field(base, "bpm", order=["nosuch"])
    with pytest.raises(ConfigError, match="unknown field"):
        edit_field(base, "tempo", order=["beatport"])
    with pytest.raises(ConfigError, match="2 providers but 1 thresholds"):
        edit_field(base, "bpm", order=["beatport", "spotify"], thresholds=[0.9])
    bad = tmp_path / "rows.json"
    bad.write_text('[{"metadata_field": "bpm", "priority_1_confidence": 1.5}]')
    with pytest.raises(ConfigError, match="not in \\[0, 1\\]"):
        load_rows(base, bad)
    good = tmp_path / "rows.csv"
    good.write_text("metadata_field,priority_1_provider,priority_1_confidence,waterfall_mode\n"
                    "bpm,spotify,0.8,parallel\n")
    row = load_rows(base, good).rows["bpm"]
    assert (row["priority_1_provider"], row["priority_2_provider"], row["waterfall_mode"]) == (
        "spotify", None, "parallel")


def test_nightly_rollup_keeps_fill_agreement_wins_latency_and_cost(
    db_session: Session, sandbox_env: Any
) -> None:
    """The provider x field rollup (016 columns) counts, per provider and field, answers
    compared with the merged value, those equal to it, the wins, and the calls' cost; its
    wins add up to the run's merges and its cost to the lookups' cost."""
    import datetime as dt

    from pipeline import maintenance

    _parallel(db_session)
    db_session.execute(
        text("UPDATE enrichment_providers SET cost_per_call_usd = 0.002 WHERE provider_name IN "
             "('lastfm', 'discogs')")
    )  # fmt: skip
    bronzes = [insert_scraped_track(db_session.connection(), a, t) for a, t in _catalogue(10)]
    run = _live_run(db_session, bronzes)
    day = db_session.execute(text("SELECT (now() AT TIME ZONE 'UTC')::date")).scalar_one()
    maintenance.rollup_providers(db_session, day)
    rows = {
        (r.provider_name, r.metadata_field): r
        for r in db_session.execute(
            text(
                "SELECT * FROM provider_performance_history WHERE period_start = :d"
            ),
            {"d": dt.datetime.combine(day, dt.time(), dt.UTC)},
        )
    }
    wins = dict(
        db_session.execute(
            text(
                "SELECT provider_used || '/' || metadata_field, count(*) FROM "
                "enrichment_transformations WHERE run_id = :r AND transformation_type = 'merge' "
                "GROUP BY 1"
            ),
            {"r": run},
        ).all()
    )
    genre = {p: r for (p, f), r in rows.items() if f == "genre"}
    assert genre["beatport"].chosen_count == wins["beatport/genre"] > 0
    assert genre["beatport"].agreement_count == genre["beatport"].chosen_count
    assert 0 < genre["lastfm"].compared_count <= genre["lastfm"].success_count
    assert genre["lastfm"].agreement_count <= genre["lastfm"].compared_count
    assert genre["lastfm"].avg_response_time_ms is not None
    lastfm_cost = db_session.execute(
        text(
            "SELECT sum(l.cost_usd) FROM enrichment_lookups l JOIN enrichment_jobs j "
            "ON j.id = l.job_id WHERE j.run_id = :r AND l.provider = 'lastfm'"
        ),
        {"r": run},
    ).scalar_one()
    assert float(lastfm_cost) > 0
    assert float(sum(r.total_cost_usd for (p, _), r in rows.items() if p == "lastfm")) == (
        pytest.approx(float(lastfm_cost))
    )
    from pipeline.whatif.rollup import field_rollup

    shown = {r["provider"]: r for r in field_rollup(db_session, "genre")}
    bp = genre["beatport"]
    assert shown["beatport"]["fill_rate"] == round(bp.success_count / bp.request_count, 4)
    assert shown["beatport"]["agreement"] == 1.0 and shown["beatport"]["chosen"] == bp.chosen_count
    assert shown["lastfm"]["cost_usd"] == pytest.approx(float(genre["lastfm"].total_cost_usd))
    maintenance.rollup_providers(db_session, day)  # idempotent
    again = db_session.execute(
        text("SELECT count(*) FROM provider_performance_history WHERE period_start = :d"),
        {"d": dt.datetime.combine(day, dt.time(), dt.UTC)},
    ).scalar_one()
    assert again == len(rows)


def test_report_plot_adds_cost_against_fill_today_and_suggested(
    db_session: Session, sandbox_env: Any, tmp_path: Path
) -> None:
    """The report's third panel: per field today's simulated (fill, calls) and, where the
    search found a cheaper configuration, the suggested one; the PNG is written."""
    from pipeline.report import build_report, plot_report
    from pipeline.whatif.plot import whatif_points

    _parallel(db_session)
    bronzes = [insert_scraped_track(db_session.connection(), a, t) for a, t in _catalogue(10)]
    _live_run(db_session, bronzes)
    points = {p.field: p for p in whatif_points(db_session, 1, ["genre", "isrc"], budget_s=20)}
    genre = points["genre"]
    assert genre.today_fill == 1.0 and genre.today_calls > 0
    assert genre.suggested_calls is not None and genre.suggested_calls < genre.today_calls
    assert genre.suggested_fill is not None and genre.suggested_fill >= genre.today_fill
    assert genre.suggested_order and genre.suggested_order.startswith("sequential")
    out = tmp_path / "report.png"
    plot_report(build_report(db_session, 1), out, whatif=list(points.values()))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_simulate_json_and_suggest_apply(database_url_env: str, sandbox_env: Any) -> None:
    """``songnodes waterfall simulate --json`` over a committed run repeats it; a proposal
    needing answers the run never asked reports them unknown; ``suggest --apply`` writes the
    row (restored afterwards with the printed undo SQL)."""
    import json

    from typer.testing import CliRunner

    from db.engine import session_scope
    from pipeline.cli import _register_optional_commands, app

    _register_optional_commands()
    tag = uuid.uuid4().hex[:6]
    with session_scope() as session:
        bronzes = [
            insert_scraped_track(session.connection(), a, f"{t} ({tag})")
            for a, t in _catalogue(6)
        ]
        bronzes += [insert_scraped_track(session.connection(), a, t) for a, t in _catalogue(6)]
    with session_scope() as session:
        run = _live_run(session, bronzes)
    runner = CliRunner()
    res = runner.invoke(app, ["waterfall", "simulate", "--run", run, "--json"])
    assert res.exit_code == 0, res.output
    sim = json.loads(res.stdout)
    assert sim["tracks"] == 12 and sim["calls"] == sim["history_calls"] > 0
    assert sim["unknown_lookups"] == 0
    assert all(f["changed"] == 0 for f in sim["fields"].values())
    res = runner.invoke(app, ["waterfall", "simulate", "--json"])  # default: the last 7 days
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["tracks"] >= 12
    res = runner.invoke(
        app,
        ["waterfall", "simulate", "--run", run, "--field", "genre", "--order", "lastfm",
         "--thresholds", "0.7", "--json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    lastfm_first = json.loads(res.stdout)
    asked = sum(1 for b in bronzes if _asked(b, run, "lastfm"))
    assert lastfm_first["fields"]["genre"]["unknown"] == 12 - asked > 0
    res = runner.invoke(
        app, ["waterfall", "simulate", "--run", run, "--field", "genre", "--order", "lastfm",
              "--thresholds", "0.7"]
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "simulation over 12 tracks" in res.output and "unknown: " in res.output
    assert "lastfm was never asked" in res.output
    res = runner.invoke(app, ["waterfall", "simulate", "--run", run, "--order", "x", "--json"])
    assert res.exit_code == 2 and "need --field" in res.output
    res = runner.invoke(
        app, ["waterfall", "suggest", "--field", "genre", "--run", run, "--apply", "--json",
              "--budget", "20"]
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert isinstance(out["rollup_30d"], list)
    res = runner.invoke(app, ["waterfall", "suggest", "--field", "genre", "--run", run,
                              "--budget", "5"])  # fmt: skip
    assert res.exit_code == 0, res.output
    applied = ",".join(out["suggestions"][0]["order"]) if out["suggestions"] else "beatport,"
    assert f"genre today: {applied}" in res.output and "candidates in" in res.output
    try:
        if out["suggestions"]:
            assert out["applied"]
            with session_scope() as session:
                row = session.execute(
                    text("SELECT priority_1_provider, waterfall_mode, updated_by FROM "
                         "metadata_enrichment_config WHERE metadata_field = 'genre'")
                ).one()  # fmt: skip
            best = out["suggestions"][0]
            assert (row[0], row[1]) == (best["order"][0], best["mode"])
            assert row[2] == "songnodes waterfall suggest"
        else:
            assert not out["applied"]
    finally:
        with session_scope() as session:
            session.execute(text(out["undo_sql"]))
            # Out of the window of tests that select "the last day" (committed, unlike theirs).
            session.execute(
                text("UPDATE enrichment_pipeline_runs SET started_at = started_at - "
                     "interval '30 days' WHERE id = :r"),
                {"r": run},
            )  # fmt: skip


def _asked(bronze: str, run: str, provider: str) -> bool:
    from db.engine import session_scope

    with session_scope() as session:
        return bool(
            session.execute(
                text(
                    "SELECT count(*) FROM enrichment_lookups l JOIN enrichment_jobs j "
                    "ON j.id = l.job_id WHERE j.run_id = :r AND j.bronze_track_id = :b "
                    "AND l.provider = :p"
                ),
                {"r": run, "b": bronze, "p": provider},
            ).scalar_one()
        )


def test_fewer_fields_or_another_query_rederive_from_stored_exchanges_strictly(
    db_session: Session, sandbox_env: Any
) -> None:
    """Asked for fewer fields than history asked, a provider's own code re-reads the stored
    exchanges and makes fewer requests (Spotify asks /artists only for genre). Asked with a query
    history never sent (round two knows an ISRC, so Spotify would search ``isrc:``), the answer
    is unknown: the stored name search is never handed to the ISRC search. Last.fm, which has no
    ISRC search, repeats its stored request in round two and is known."""
    _parallel(db_session)
    bronzes = [insert_scraped_track(db_session.connection(), a, t) for a, t in _catalogue(8)]
    run = _live_run(db_session, bronzes)
    history = load_history(db_session, Selection(run_ids=(run,)))
    base = today(db_session)
    today_sim = simulate(base.plan(), base.prices(), history, session=db_session)
    found = [t for t in history if t.answers["spotify"].status == "found"]
    assert found, "spotify found these tracks: search (+ audio features) + /artists for genre"
    no_spotify_genre = edit_field(base, "genre", order=["beatport", "lastfm", "discogs"])
    fewer = simulate(no_spotify_genre.plan(), no_spotify_genre.prices(), history,
                     session=db_session)  # fmt: skip
    assert fewer.reasked_lookups >= len(history) and fewer.unknown_lookups == 0
    assert today_sim.calls - fewer.calls == len(found)
    for name in ("isrc", "spotify_id", "release_date"):
        assert fewer.fields[name].filled == today_sim.fields[name].filled
        assert fewer.fields[name].changed == 0
    # Spotify second, after MusicBrainz found the ISRC: spotify would search by ISRC.
    later = edit_field(base, "isrc", order=["musicbrainz", "spotify"], mode="sequential",
                       thresholds=[1.0, 0.95])  # musicbrainz never meets 1.0: spotify is asked
    for f in base.rows:
        if f != "isrc":
            rule = dict(later.rows[f])
            for n in range(1, 5):
                if rule.get(f"priority_{n}_provider") == "spotify":
                    rule[f"priority_{n}_provider"] = None
            later = later.with_row(f, rule)
    lastfm_late = edit_field(later, "genre", order=["beatport", "lastfm"], mode="sequential",
                             thresholds=[1.0, 0.5])  # fmt: skip
    sim = simulate(lastfm_late.plan(), lastfm_late.prices(), history, session=db_session)
    assert sim.unknown_lookups > 0
    assert any("spotify" in u and "never asked with these parameters" in u
               for u in sim.unknown_examples)  # fmt: skip
    assert sim.fields["genre"].unknown == 0  # lastfm in round two: same request, known
    assert sim.fields["genre"].filled == today_sim.fields["genre"].filled


def test_selection_filters(db_session: Session, sandbox_env: Any) -> None:
    """Last N runs, one run, a source, a time range: each selects the tracks it names."""
    import datetime as dt

    _parallel(db_session)
    first = [insert_scraped_track(db_session.connection(), a, t) for a, t in _catalogue(3)]
    run1 = _live_run(db_session, first)
    second = [insert_scraped_track(db_session.connection(), a, t) for a, t in _catalogue(5)[3:]]
    run2 = _live_run(db_session, second)
    db_session.execute(
        text("UPDATE enrichment_pipeline_runs SET started_at = started_at - interval '1 hour'"
             " WHERE id = :r"), {"r": run1},
    )  # fmt: skip
    ids = {t.bronze_id for t in load_history(db_session, Selection(runs=1))}
    assert ids == set(second)
    assert {t.bronze_id for t in load_history(db_session, Selection(run_ids=(run1,)))} == set(
        first
    )
    both = Selection(runs=2, source="mixesdb")
    assert {t.bronze_id for t in load_history(db_session, both)} == set(first) | set(second)
    assert load_history(db_session, Selection(runs=2, source="no-such-source")) == []
    recent = Selection(since=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=30), runs=5)
    assert {t.bronze_id for t in load_history(db_session, recent)} == set(second)
    assert run2
