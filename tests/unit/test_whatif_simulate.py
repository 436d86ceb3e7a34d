"""pipeline.whatif.simulate on hand-built history (no database: session=None, so an answer that
cannot be reused as stored is unknown). The live planning and resolution code decides."""

from __future__ import annotations

from decimal import Decimal

from pipeline.matching import TrackQuery
from pipeline.waterfall import Outcome, plan_from_snapshot
from pipeline.whatif.history import Answer, TrackHistory
from pipeline.whatif.simulate import simulate

QUERY = TrackQuery("Artist", "Title")
PROVIDERS = {p: {"enabled": True} for p in ("spotify", "beatport", "getsongbpm")}


def _answer(provider: str, fields: set[str], outcomes: list[Outcome], rnd: int = 1) -> Answer:
    return Answer(provider, "job", "run", "b1", rnd, frozenset(fields), "found", 1, Decimal(0),
                  10, QUERY, outcomes, (0.0, rnd))  # fmt: skip


def _track() -> TrackHistory:
    beatport = _answer("beatport", {"bpm"}, [Outcome("beatport", "bpm", 64.0, 0.6, True)])
    gsb = _answer("getsongbpm", {"bpm"}, [Outcome("getsongbpm", "bpm", 128.0, 0.85, True)], 2)
    t = TrackHistory("b1", "Artist", "Title", "test", QUERY, False, "run", "job",
                     baseline_values={"bpm": 128.0},
                     baseline_providers={"bpm": "getsongbpm"})  # fmt: skip
    t.answers = {"beatport": beatport, "getsongbpm": gsb}
    t.baseline_lookups = [beatport, gsb]
    return t


def _rows(with_isrc: bool, bpm_order: list[tuple[str, float]]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = [{"metadata_field": "bpm", "waterfall_mode": "sequential",
                                      "min_acceptable_confidence": 0.7}]  # fmt: skip
    for n, (p, c) in enumerate(bpm_order, 1):
        rows[0] |= {f"priority_{n}_provider": p, f"priority_{n}_confidence": c}
    if with_isrc:
        rows.append({"metadata_field": "isrc", "priority_1_provider": "spotify",
                     "priority_1_confidence": 0.95, "waterfall_mode": "sequential"})  # fmt: skip
    return rows


def test_history_replayed_and_a_change_explained() -> None:
    """The run's own waterfall repeats it; putting getsongbpm first skips beatport (one call
    saved, value unchanged); dropping getsongbpm leaves beatport's half-time reading below the
    floor: the field empties, with the reason."""
    prices = {"beatport": Decimal("0.01"), "getsongbpm": Decimal("0.02")}
    same = simulate(plan_from_snapshot(_rows(False, [("beatport", 0.9), ("getsongbpm", 0.8)]),
                                       PROVIDERS), prices, [_track()])  # fmt: skip
    bpm = same.fields["bpm"]
    assert (bpm.filled, bpm.changed, same.calls, same.unknown_lookups) == (1, 0, 2, 0)
    first = simulate(plan_from_snapshot(_rows(False, [("getsongbpm", 0.8)]), PROVIDERS),
                     prices, [_track()])  # fmt: skip
    assert first.calls == 1 and first.cost_usd == Decimal("0.02")
    assert first.fields["bpm"].changed == 0 and first.fields["bpm"].calls == 1.0
    only = simulate(plan_from_snapshot(_rows(False, [("beatport", 0.9)]), PROVIDERS), prices,
                    [_track()])  # fmt: skip
    ex = only.fields["bpm"].examples[0]
    assert only.fields["bpm"].filled == 0 and only.fields["bpm"].changed == 1
    assert (ex["old"], ex["new"], ex["old_provider"]) == (128.0, None, "getsongbpm")
    assert "min_acceptable 0.70" in ex["reason"]
    assert only.fields["bpm"].history_calls == 2.0 and only.calls == 1


def test_an_unknown_answer_that_could_teach_ids_makes_later_rounds_unknown() -> None:
    """Spotify (isrc) was never asked about the track: unknown. getsongbpm is asked in round
    two, whose query would have learned Spotify's ISRC: unknown too, and so is bpm."""
    plan = plan_from_snapshot(_rows(True, [("beatport", 0.9), ("getsongbpm", 0.8)]), PROVIDERS)
    sim = simulate(plan, {}, [_track()])
    assert sim.unknown_lookups == 2 and sim.tracks_with_unknown == 1
    assert sim.fields["isrc"].unknown == 1 and sim.fields["bpm"].unknown == 1
    assert sim.fields["bpm"].filled == 0 and sim.fields["bpm"].changed == 0
    assert any("depends on the unknown answer of spotify" in u for u in sim.unknown_examples)
