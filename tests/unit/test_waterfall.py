"""Waterfall resolution: priority order, thresholds, fallback, modes, exclusions."""

from __future__ import annotations

from pipeline.waterfall import Outcome, next_lookups, pick_winner, plan_from_snapshot

# The seeded bpm/key/genre/spotify_id rows (reference section 2), as the snapshot stores them.
CONFIG = [
    {
        "metadata_field": "bpm",
        "priority_1_provider": "beatport",
        "priority_1_confidence": "0.98",
        "priority_2_provider": "spotify",
        "priority_2_confidence": "0.85",
        "priority_3_provider": "acousticbrainz",
        "priority_3_confidence": "0.75",
        "priority_4_provider": "mixesdb",
        "priority_4_confidence": "0.60",
        "min_acceptable_confidence": "0.70",
        "required_for_gold": True,
        "enabled": True,
    },
    {
        "metadata_field": "spotify_id",
        "priority_1_provider": "spotify",
        "priority_1_confidence": "1.00",
        "min_acceptable_confidence": "0.95",
        "required_for_gold": True,
        "enabled": True,
    },
    {
        "metadata_field": "genre",
        "priority_1_provider": "beatport",
        "priority_1_confidence": "0.90",
        "priority_2_provider": "spotify",
        "priority_2_confidence": "0.85",
        "priority_3_provider": "lastfm",
        "priority_3_confidence": "0.70",
        "priority_4_provider": "discogs",
        "priority_4_confidence": "0.65",
        "min_acceptable_confidence": "0.60",
        "waterfall_mode": "parallel",
        "enabled": True,
    },
    {"metadata_field": "valence", "priority_1_provider": "spotify", "enabled": False},
]
PROVIDERS = [
    {"provider_name": p, "enabled": True, "health_status": "healthy"}
    for p in ("beatport", "spotify", "acousticbrainz", "mixesdb", "lastfm", "discogs")
]


def o(provider: str, value: object, conf: float, field: str = "bpm", ok: bool = True) -> Outcome:
    return Outcome(provider, field, value, conf, ok)


def test_plan_mirrors_config_and_skips_disabled_fields() -> None:
    """Slots keep priority order; disabled fields are not planned."""
    plan = plan_from_snapshot(CONFIG, PROVIDERS)
    assert plan.rules["bpm"].providers() == ["beatport", "spotify", "acousticbrainz", "mixesdb"]
    assert "valence" not in plan.rules
    assert plan.rules["genre"].mode == "parallel"


def test_unhealthy_and_disabled_providers_are_excluded() -> None:
    """A provider that is down or disabled never appears in the plan."""
    providers = [dict(p) for p in PROVIDERS]
    providers[0]["health_status"] = "down"  # beatport
    providers[1]["enabled"] = False  # spotify
    plan = plan_from_snapshot(CONFIG, providers)
    assert plan.rules["bpm"].providers() == ["acousticbrainz", "mixesdb"]
    assert plan.excluded == {"beatport", "spotify"}


def test_first_priority_meeting_threshold_wins_not_last_answer() -> None:
    """Priority order decides, not arrival order (the reference let the last answer win)."""
    rule = plan_from_snapshot(CONFIG, PROVIDERS).rules["bpm"]
    outcomes = [o("mixesdb", 126.0, 0.9), o("spotify", 128.0, 0.9), o("beatport", 127.0, 0.99)]
    w = pick_winner(rule, outcomes)
    assert w is not None and w.outcome.provider == "beatport" and w.outcome.value == 127.0
    assert not w.fallback


def test_below_threshold_falls_through_to_next_priority() -> None:
    """Beatport at 0.95 misses its 0.98 slot; Spotify at 0.90 meets 0.85 and wins."""
    rule = plan_from_snapshot(CONFIG, PROVIDERS).rules["bpm"]
    w = pick_winner(rule, [o("beatport", 127.0, 0.95), o("spotify", 128.0, 0.90)])
    assert w is not None and w.outcome.provider == "spotify" and w.slot and w.slot.priority == 2


def test_fallback_to_min_acceptable_when_no_slot_met() -> None:
    """spotify_id at 0.99 misses the 1.00 slot but passes min_acceptable 0.95, marked fallback."""
    rule = plan_from_snapshot(CONFIG, PROVIDERS).rules["spotify_id"]
    w = pick_winner(rule, [o("spotify", "abc", 0.99, field="spotify_id")])
    assert w is not None and w.fallback and w.outcome.value == "abc"
    assert pick_winner(rule, [o("spotify", "abc", 0.90, field="spotify_id")]) is None


def test_failed_and_empty_outcomes_never_win() -> None:
    """A failed lookup or a None value is ignored even with high confidence."""
    rule = plan_from_snapshot(CONFIG, PROVIDERS).rules["bpm"]
    outcomes = [o("beatport", 127.0, 0.99, ok=False), o("spotify", None, 0.99)]
    assert pick_winner(rule, outcomes) is None


def test_sequential_asks_next_provider_only_while_unmet() -> None:
    """Sequential bpm: beatport first; spotify only after beatport missed its threshold."""
    plan = plan_from_snapshot(CONFIG, PROVIDERS)
    first = next_lookups(plan, [], [], fields=["bpm"])
    assert list(first) == ["beatport"]
    met = next_lookups(plan, ["beatport"], [o("beatport", 127.0, 0.99)], fields=["bpm"])
    assert met == {}
    unmet = next_lookups(plan, ["beatport"], [o("beatport", 127.0, 0.5)], fields=["bpm"])
    assert list(unmet) == ["spotify"]


def test_parallel_asks_everyone_at_once_with_all_their_fields() -> None:
    """Parallel genre asks all four providers in round one; each gets all its plan fields."""
    plan = plan_from_snapshot(CONFIG, PROVIDERS)
    first = next_lookups(plan, [], [])
    assert set(first) == {"beatport", "spotify", "lastfm", "discogs"}
    assert first["beatport"] == ["bpm", "genre"]
    assert first["spotify"] == ["bpm", "genre", "spotify_id"]


def test_exhausted_waterfall_is_ready_to_merge() -> None:
    """When every provider has been asked, nothing more is planned even if unmet."""
    plan = plan_from_snapshot(CONFIG, PROVIDERS)
    asked = ["beatport", "spotify", "acousticbrainz", "mixesdb", "lastfm", "discogs"]
    assert next_lookups(plan, asked, []) == {}
