"""Setlist entries as scrapers send them (pipeline.tracklist): nothing refused, odd ones flagged.

Shapes from real tracklists: 1001Tracklists prints cue times as ``[00:05:00]`` / ``45:30``
(gmunumel/track-list-extractor's output of a real 1001Tracklists page), marks tracks played over
the previous one with ``w/`` in the number column, lists unknown tracks as ``ID - ID``; public
mixtape tracklists name mashups ``50 Cent Vs. Bee Gees - It's your birthday vs Stayin' Alive``.
"""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.envelope import parse_envelope
from pipeline.tracklist import is_placeholder_name, parse_cue_time, read_tracklist


@pytest.mark.parametrize(
    "name", [None, "", "   ", "ID", "id", " Id ", "ID - ID", "id  -  id", "?", "???", "Unknown"]
)
def test_placeholder_names(name: Any) -> None:
    """Blank, whitespace, ID, ID - ID, question marks and unknown (any case) mean unidentified."""
    assert is_placeholder_name(name)


@pytest.mark.parametrize("name", ["Idris Elba", "IDK", "Unknown Pleasures", "?!", "ID Remix", 0])
def test_real_names_are_not_placeholders(name: Any) -> None:
    """Names that merely contain a placeholder are names."""
    assert not is_placeholder_name(name)


@pytest.mark.parametrize(
    ("value", "ms"),
    [
        ("45:30", 2_730_000),
        ("05:00", 300_000),
        ("75:05", 4_505_000),  # minutes past 59 in a long set
        ("1:02:15", 3_735_000),
        ("00:05:00", 300_000),
        ("[00:11:45]", 705_000),
        (90, 90_000),
        (12.5, 12_500),
        ("3810", 3_810_000),
        (None, None),
        ("", None),
    ],
)
def test_cue_times(value: Any, ms: int | None) -> None:
    """mm:ss, h:mm:ss and seconds (number or digit string) become milliseconds."""
    assert parse_cue_time(value) == ms


@pytest.mark.parametrize("value", ["??:??", "1:75", "ten", -5, True, float("nan"), [1]])
def test_unreadable_cue_times_raise(value: Any) -> None:
    """Anything else is unreadable (the reader turns this into a flag, never a refusal)."""
    with pytest.raises(ValueError, match="cue_time"):
        parse_cue_time(value)


def _one(entry: Any) -> Any:
    (read,) = read_tracklist([entry])
    return read


def test_unidentified_entries_are_kept_without_flags() -> None:
    """Blank, missing and placeholder names give unidentified entries, not bad ones."""
    entries = read_tracklist(
        [
            {"position": 1, "artist": "", "title": ""},
            {"position": 2},
            {"position": 3, "artist": "ID", "title": "ID"},
            {"position": 4, "artist": "?", "title": "?"},
            {"position": 5, "artist": "unknown", "title": "unknown"},
            {"position": 6, "artist": "Dino Lenny & John Digweed", "title": "ID"},
            {"position": 7, "name": "ID - ID"},
        ]
    )
    assert [e.identified for e in entries] == [False] * 7
    assert [e.flags for e in entries] == [()] * 7
    assert entries[5].artist == "Dino Lenny & John Digweed" and entries[5].title is None
    assert [e.position for e in entries] == list(range(1, 8))


def test_w_slots_in_every_spelling_share_the_previous_position() -> None:
    """'w/' as position, a 'w/ ' artist prefix, with_previous / w flags: played over the
    previous track, so same position, role 'with'; the next main entry moves on."""
    entries = read_tracklist(
        [
            {"position": 4, "artist": "Sama (US) & Serve Cold", "title": "Deeplow"},
            {"position": "w/", "artist": "YOTTO", "title": "Call Me Back"},
            {"artist": "w/ ARTBAT & JOA (US)", "title": "The Spot"},
            {"with_previous": True, "artist": "A", "title": "B"},
            {"w": True, "artist": "C", "title": "D"},
            {"artist": "Argy & John Cala", "title": "BOOM"},
        ]
    )
    assert [(e.position, e.slot_role, e.with_previous) for e in entries] == [
        (4, "main", False),
        (4, "with", True),
        (4, "with", True),
        (4, "with", True),
        (4, "with", True),
        (5, "main", False),
    ]
    assert entries[2].artist == "ARTBAT & JOA (US)"


def test_repeated_position_is_kept_as_played_over_the_first() -> None:
    """Two entries sent at one position: both kept, the later one in role 'with'."""
    entries = read_tracklist(
        [
            {"position": "21", "artist": "Township Rebellion", "title": "Madeleine"},
            {"position": 21, "artist": "Argy & PollyAnna & Meduza", "title": "Melodia"},
        ]
    )
    assert [(e.position, e.slot_role, e.flags) for e in entries] == [
        (21, "main", ()),
        (21, "with", ()),
    ]


def test_mashups() -> None:
    """'vs.' between titles (or a mashup flag) is a mashup, with parts paired when both sides
    split evenly; 'vs' in the artist alone is a collaboration credit, not a mashup."""
    paired = _one({"position": 1, "artist": "50 Cent Vs. Bee Gees",
                   "title": "It's your birthday vs Stayin' Alive"})
    assert paired.mashup and paired.identified
    assert paired.mashup_parts == [
        {"artist": "50 Cent", "title": "It's your birthday"},
        {"artist": "Bee Gees", "title": "Stayin' Alive"},
    ]
    flagged = _one({"position": 1, "artist": "Nine Inch Nails vs The Beatles",
                    "title": "Come Closer Together", "mashup": True})
    assert flagged.mashup and flagged.mashup_parts == [{"title": "Come Closer Together"}]
    given = _one({"position": 1, "artist": "X", "title": "Y", "mashup": True,
                  "parts": [{"artist": "A", "title": "One"}, {"artist": "ID", "title": "Two"}]})
    assert given.mashup_parts == [{"artist": "A", "title": "One"}, {"title": "Two"}]
    credit = _one({"position": 1, "artist": "Armin van Buuren vs Vini Vici",
                   "title": "Great Spirit"})
    assert not credit.mashup and credit.mashup_parts is None


def test_bad_entries_are_flagged_with_their_reason_and_kept_as_sent() -> None:
    """Each odd entry carries a reason; raw is the entry exactly as sent; nothing raises."""
    long_name = "A" * 10_000
    sent: list[Any] = [
        "Artist - Title",
        None,
        {"position": "abc", "artist": "A", "title": "B"},
        {"position": 0, "artist": "A", "title": "B"},
        {"position": 9, "artist": long_name, "title": "B"},
        {"position": 10, "artist": "Bad\x07Name\u202e", "title": "Song"},
        {"position": 11, "artist": "A", "title": 1999},
        {"position": 12, "artist": "A", "title": "B", "cue_time": "??:??"},
        {"position": 13, "artist": "\x01\x02", "title": "B"},
    ]
    entries = read_tracklist(sent)
    assert [e.raw for e in entries] == sent
    reasons = [e.flags for e in entries]
    assert reasons[0] == ("entry is not a JSON object (string)",)
    assert reasons[1] == ("entry is not a JSON object (null)",)
    assert "position 'abc' unreadable" in reasons[2][0]
    assert "position '0' unreadable" in reasons[3][0]
    assert reasons[4] == ("artist is 10000 characters, over 1000",)
    assert reasons[5] == ("artist contains control characters (removed for lookups)",)
    assert reasons[6] == ("title is not text (number)",)
    assert "'??:??' is not mm:ss" in reasons[7][0]
    assert "artist is empty once control characters are removed" in reasons[8]
    # Unusable names are not looked up; a control-character name is, once cleaned.
    assert [e.identified for e in entries] == [False, False, True, True, False, True, False,
                                               True, False]
    assert entries[5].artist == "BadName"
    # Unreadable positions follow the previous entry.
    assert [e.position for e in entries[:4]] == [1, 2, 3, 4]


def test_first_entry_w_slot_reads_as_main() -> None:
    """A w/ slot with nothing before it cannot be played over anything: main, flagged."""
    entry = _one({"position": "w/", "artist": "A", "title": "B"})
    assert (entry.position, entry.slot_role) == (1, "main")
    assert entry.flags == ("w/ slot with no track before it (read as a main entry)",)


def test_envelope_with_broken_entries_still_parses() -> None:
    """The envelope is valid whatever its entries are (only tracks must be a list)."""
    env = parse_envelope(
        {
            "kind": "playlist",
            "source": "1001tracklists",
            "source_url": "https://www.1001tracklists.com/tracklist/x",
            "scraper_version": "t-1",
            "playlist_name": "Broken set",
            "raw_json": {"tracks": [None, 7, {"position": "x"}, {"artist": "", "title": ""}]},
        }
    )
    assert [e.identified for e in env.tracklist()] == [False] * 4
