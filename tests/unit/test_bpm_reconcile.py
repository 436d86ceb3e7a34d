"""Half/double-time reconciliation of the winning BPM against the other providers."""

from __future__ import annotations

from pipeline.merge import reconcile_bpm_reading
from pipeline.waterfall import Outcome, Slot, Winner


def _winner(provider: str, value: float, conf: float) -> Winner:
    return Winner("bpm", Outcome(provider, "bpm", value, conf, True), Slot(3, provider, 0.75), "")


def test_doubtful_half_time_reading_never_moves_a_confident_winner() -> None:
    """AcousticBrainz 141 at 1.00 stays 141 although Beatport read 70 at 0.67 (the bug the
    demo trace exposed: the old consensus of [70, 141] folded the winner to 70.5)."""
    outcomes = [Outcome("beatport", "bpm", 70.0, 0.67, True)]
    value, note = reconcile_bpm_reading(_winner("acousticbrainz", 141.0, 1.0), outcomes)
    assert (value, note) == (141.0, None)


def test_winner_is_folded_when_confident_providers_outvote_it() -> None:
    """A half-time winner is doubled when two confident providers agree on the full tempo."""
    outcomes = [
        Outcome("spotify", "bpm", 140.0, 0.9, True),
        Outcome("acousticbrainz", "bpm", 140.0, 0.8, True),
    ]
    value, note = reconcile_bpm_reading(_winner("beatport", 70.0, 0.9), outcomes)
    assert value == 140.0 and note is not None and "beatport read 70" in note


def test_single_equal_disagreement_keeps_the_waterfall_choice() -> None:
    """One other provider at the same confidence does not overrule the winner."""
    outcomes = [Outcome("spotify", "bpm", 70.0, 0.9, True)]
    assert reconcile_bpm_reading(_winner("beatport", 140.0, 0.9), outcomes) == (140.0, None)


def test_agreeing_readings_change_nothing() -> None:
    """Providers within 3% of the winner leave it as it is."""
    outcomes = [
        Outcome("spotify", "bpm", 128.5, 0.95, True),
        Outcome("acousticbrainz", "bpm", 127.9, 0.99, True),
    ]
    assert reconcile_bpm_reading(_winner("beatport", 128.0, 0.9), outcomes) == (128.0, None)
