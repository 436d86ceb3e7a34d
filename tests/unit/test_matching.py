"""Track matching: name normalisation, splitting, confidence scores and identity keys."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from pipeline import matching
from pipeline.matching import (
    Candidate,
    TrackQuery,
    best_match,
    identity_key,
    match_confidence,
    normalise_name,
    split_artists,
    split_title,
)
from pipeline.normalise.errors import InvalidValue

CSV_PATH = Path(__file__).parents[2] / "pipeline" / "data" / "beatport_top100_2025-10-29.csv"
DAFT = TrackQuery(
    "Daft Punk", "Harder Better Faster Stronger", isrc="GBDUW0000059", duration_ms=224000
)


def chart_rows() -> list[dict[str, str]]:
    with CSV_PATH.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Fred again..", "fred again"),
        ("RBØR", "rbor"),
        ("Salomé Das", "salome das"),
        ("Above & Beyond", "above and beyond"),
        ("Above and Beyond", "above and beyond"),
        ("Above + Beyond", "above and beyond"),
        ("  D.O.D  ", "dod"),
        ("MARTEN HØRGER", "marten horger"),
        ("Şașkın", "saskin"),
        ("Dj Brenno Paixão", "dj brenno paixao"),
    ],
)
def test_normalise_name(raw: str, expected: str) -> None:
    """Case, accents, ampersands and punctuation are unified."""
    assert normalise_name(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Skepta & Fred again.. & PlaqueBoyMax", ["Skepta", "Fred again..", "PlaqueBoyMax"]),
        ("Trigga & Chase & Status & Irah", ["Trigga", "Chase & Status", "Irah"]),
        ("Above & Beyond", ["Above & Beyond"]),
        ("Jkyl & Hyde", ["Jkyl & Hyde"]),
        ("Walker & Royce & Dom Dolla", ["Walker & Royce", "Dom Dolla"]),
        ("Fred again.. x Skepta", ["Fred again..", "Skepta"]),
        ("Tiësto vs. Dimitri Vegas & Like Mike", ["Tiësto", "Dimitri Vegas & Like Mike"]),
        ("Afrojack feat. Eva Simons", ["Afrojack", "Eva Simons"]),
        ("Afrojack ft. Eva Simons", ["Afrojack", "Eva Simons"]),
        ("Afrojack (feat. Eva Simons)", ["Afrojack", "Eva Simons"]),
        ("Kaskade featuring deadmau5", ["Kaskade", "deadmau5"]),
        ("Sub Focus, Wilkinson and Bou", ["Sub Focus", "Wilkinson", "Bou"]),
        ("Florence and the Machine", ["Florence and the Machine"]),
        ("Shimon/Benny L", ["Shimon", "Benny L"]),
        ("Wraz. & Substance (CA)", ["Wraz.", "Substance (CA)"]),
        ("Skepta & skepta", ["Skepta"]),
        ("", []),
    ],
)
def test_split_artists(raw: str, expected: list[str]) -> None:
    """Collaborations split on every separator; known acts and odd real names stay whole."""
    assert split_artists(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Kumnandi (Extended Mix)", ("Kumnandi", "Extended Mix")),
        ("Strobe - Original Mix", ("Strobe", "Original Mix")),
        ("Title [Remix]", ("Title", "Remix")),
        ("Push (feat. OFFAIAH)", ("Push", None)),
        ("Bad Like We feat. Killa Benz", ("Bad Like We", None)),
        ("Lady (Hear Me Tonight) - Remix", ("Lady (Hear Me Tonight)", "Remix")),
        ("Act Up (Bad Boy) (Extended Mix)", ("Act Up (Bad Boy)", "Extended Mix")),
        (
            "It's That Time (FISHER Remix - Extended Mix)",
            ("It's That Time", "FISHER Remix - Extended Mix"),
        ),
        (
            "Take Over Control (feat. Eva Simons) [HILLS Remix]",
            ("Take Over Control", "HILLS Remix"),
        ),
        ("Life Is Simple (Move Your Body)", ("Life Is Simple (Move Your Body)", None)),
        ("Baianá (Boa Noite) - Extended", ("Baianá (Boa Noite)", "Extended")),
        ("Start & Stop", ("Start & Stop", None)),
        ("(Original Mix)", ("(Original Mix)", None)),
    ],
)
def test_split_title(raw: str, expected: tuple[str, str | None]) -> None:
    """Mix names come out of brackets and dash suffixes; feat. is removed; real parentheses stay."""
    assert split_title(raw) == expected


def test_identity_key_is_artist_order_insensitive_and_ignores_neutral_mixes() -> None:
    """Reordered artists and Original Mix/no mix give the same key; Extended Mix and a remix do
    not (issue 14: another mix is another track, for merge as for matching)."""
    assert identity_key("Skepta & Fred again..", "Victory Lap") == identity_key(
        "Fred again.. & Skepta", "Victory Lap"
    )
    assert identity_key("deadmau5", "Strobe (Original Mix)") == identity_key("Deadmau5", "Strobe")
    assert identity_key("deadmau5", "Strobe") != identity_key("deadmau5", "Strobe (Tiësto Remix)")
    assert identity_key("deadmau5", "Strobe") != identity_key("deadmau5", "Strobe (Extended Mix)")
    assert identity_key("deadmau5", "Strobe - Extended") == identity_key(
        "deadmau5", "Strobe (Extended Mix)"
    )
    assert identity_key("Justice", "Phantom Pt. II") == identity_key("Justice", "Phantom Part 2")
    assert identity_key("Justice", "Phantom Pt. II") != identity_key("Justice", "Phantom")
    assert identity_key("Skepta & Fred again..", "Victory Lap") == "fred again,skepta|victory lap"


def test_identity_key_folds_featured_artists_and_credited_remixers() -> None:
    """feat. in the title counts as an artist; a remixer credited in the artist field is folded."""
    assert identity_key("Skrillex & Hamdi & Taichu", "Push (feat. OFFAIAH)") == identity_key(
        "Skrillex & Hamdi & OFFAIAH & Taichu", "Push"
    )
    assert identity_key("Kate Linn & Provi & Fantomel", "Dame Un Grrr (Provi Remix)") == (
        identity_key("Kate Linn & Fantomel", "Dame Un Grrr (Provi Remix)")
    )


def test_identity_key_on_every_chart_row() -> None:
    """Every real chart row gets a key that survives reversing its artist order."""
    for row in chart_rows():
        artists = split_artists(row["artists"])  # keeps known acts such as "Jkyl & Hyde" whole
        forward = identity_key(row["artists"], row["title"])
        backward = identity_key(" & ".join(reversed(artists)), row["title"])
        assert "|" in forward and forward == backward, row


def test_isrc_equality_dominates() -> None:
    """Same ISRC scores 0.99, or about 0.9 when the names are unrelated."""
    same = Candidate("Daft Punk", "Harder, Better, Faster, Stronger", 224000, "GB-DUW-00-00059")
    assert match_confidence(DAFT, same) == 0.99
    assert (
        0.85 <= match_confidence(DAFT, Candidate("Someone", "Else", 224000, "GBDUW0000059")) < 0.95
    )


def test_exact_names_and_versions() -> None:
    """Exact names score 0.95, with or without "Original Mix"; an Extended Mix or a remix is
    another version, capped under the accept threshold (issue 14)."""
    query = TrackQuery("Yaans & Silas Africa", "Kumnandi (Original Mix)")
    exact = match_confidence(query, Candidate("Silas Africa & Yaans", "Kumnandi (Original Mix)"))
    bare = match_confidence(query, Candidate("Silas Africa & Yaans", "Kumnandi"))
    extended = match_confidence(query, Candidate("Yaans & Silas Africa", "Kumnandi (Extended Mix)"))
    remix = match_confidence(query, Candidate("Yaans & Silas Africa", "Kumnandi (Zero Remix)"))
    assert exact == bare == 0.95
    assert extended == remix == matching.VERSION_MISMATCH_CAP < matching.ACCEPT_THRESHOLD


def test_fuzzy_and_weak_matches() -> None:
    """Near-identical spellings score high; same artist with another title stays below 0.6."""
    near = match_confidence(DAFT, Candidate("Daft Punk", "Harder, Better, Faster & Stronger"))
    other = match_confidence(DAFT, Candidate("Daft Punk", "Around the World"))
    stranger = match_confidence(DAFT, Candidate("Nero", "Innocence 2025"))
    assert near >= 0.85
    assert other < 0.6
    assert stranger < 0.3


def test_duration_and_isrc_disagreement_lower_the_score() -> None:
    """Durations >10 s apart cost a little, >30 s a lot; different ISRCs cost a lot."""
    query = TrackQuery("Daft Punk", "Harder Better Faster Stronger", duration_ms=224000)
    base = match_confidence(query, Candidate("Daft Punk", "Harder Better Faster Stronger", 224000))
    off15 = match_confidence(query, Candidate("Daft Punk", "Harder Better Faster Stronger", 239000))
    off60 = match_confidence(query, Candidate("Daft Punk", "Harder Better Faster Stronger", 284000))
    other_isrc = match_confidence(
        DAFT, Candidate("Daft Punk", "Harder Better Faster Stronger", 224000, "USRC17607839")
    )
    assert base > off15 > off60
    assert base - off60 >= 0.25
    assert other_isrc <= 0.6


def test_best_match_picks_the_best_or_nothing() -> None:
    """best_match returns the top candidate with its score, or None when all are weak."""
    good = Candidate("Daft Punk", "Harder Better Faster Stronger", 224000)
    bad = Candidate("Daft Punk", "Around the World")
    picked = best_match(DAFT, [bad, good])
    assert picked is not None and picked[0] is good and picked[1] >= 0.9
    assert best_match(DAFT, [bad]) is None
    assert best_match(DAFT, []) is None


def test_query_defaults_and_hostile_candidates() -> None:
    """TrackQuery defaults to an empty provider_ids mapping; junk candidates score, not crash."""
    assert dict(TrackQuery("a", "b").provider_ids) == {}
    junk = Candidate(None, None, "x", 12)  # type: ignore[arg-type]
    assert match_confidence(DAFT, junk) < 0.5
    assert match_confidence(DAFT, Candidate("'; DROP TABLE x; --", "\x00\u202e🎧")) < 0.5


@pytest.mark.parametrize("bad", [None, 1, b"x", ["a"]], ids=repr)
def test_name_functions_reject_non_strings(bad: object) -> None:
    """Public name helpers raise InvalidValue for non-strings."""
    for func in (normalise_name, split_artists, split_title):
        with pytest.raises(InvalidValue):
            func(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidValue):
        identity_key(bad, "x")  # type: ignore[arg-type]


names = st.text(st.characters(codec="utf-8"), max_size=40)


@given(names, names, names, names)
def test_confidence_is_bounded(a1: str, t1: str, a2: str, t2: str) -> None:
    """match_confidence is always within [0, 1] and a track matches itself at least as well."""
    query = TrackQuery(a1, t1)
    score = match_confidence(query, Candidate(a2, t2))
    assert 0.0 <= score <= 1.0
    assert match_confidence(query, Candidate(a1, t1)) >= score or not normalise_name(a1 + t1)


@given(names, names)
@example("𝖠", "")  # mathematical A: no case mapping of its own, NFKD gives an uppercase A
def test_identity_key_is_stable(artist: str, title: str) -> None:
    """identity_key is deterministic and normalise_name is idempotent."""
    assert identity_key(artist, title) == identity_key(artist, title)
    assert normalise_name(normalise_name(artist)) == normalise_name(artist)


# --- the memo caches of the name functions (pipeline.matching._CACHE_SIZE) ---------------------
SANDBOX_CATALOGUE = Path(__file__).parents[2] / "providers" / "sandbox" / "data" / "catalogue.csv"


def _catalogue_rows() -> list[dict[str, str]]:
    with SANDBOX_CATALOGUE.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(line for line in handle if not line.startswith("#")))


def _clear_name_caches() -> None:
    matching._normalise_name.cache_clear()
    matching._text_parts.cache_clear()


def test_cached_name_functions_equal_uncached_on_catalogue() -> None:
    """Over every sandbox catalogue name (Beatport chart entries), the cached functions answer
    what the undecorated ones compute, on a miss and on a hit; warm caches change no match."""
    rows = _catalogue_rows()
    uncached_norm = matching._normalise_name.__wrapped__
    uncached_parts = matching._text_parts.__wrapped__
    for row in rows:
        artist, title = row["artist"], row["title"]
        for name in (artist, title, *split_artists(artist)):
            assert normalise_name(name) == uncached_norm(name) == normalise_name(name)
        assert matching._parts(artist, title) == uncached_parts(artist, title)
    queries = [
        TrackQuery(r["artist"], r["title"], r["isrc"] if i % 2 else None)
        for i, r in enumerate(rows[:400])
    ]
    candidates = [Candidate(r["artist"], r["title"], None, r.get("isrc") or None) for r in rows]

    def picks() -> list[tuple[str, str, float] | None]:
        out: list[tuple[str, str, float] | None] = []
        for i, query in enumerate(queries):
            picked = best_match(query, candidates[i : i + 8])
            out.append(None if picked is None else (picked[0].artist, picked[0].title, picked[1]))
        return out

    _clear_name_caches()
    cold = picks()
    warm = picks()
    assert cold == warm
    # best_match scores the query once; it must agree with match_confidence per candidate.
    for i, query in enumerate(queries[:50]):
        scores = [match_confidence(query, c) for c in candidates[i : i + 8]]
        assert cold[i] is None or cold[i][2] == max(scores)


@given(names, names)
def test_cached_parts_equal_uncached(artist: str, title: str) -> None:
    """Any text: the memoised normalisation and parts equal a fresh computation."""
    assert normalise_name(artist) == matching._normalise_name.__wrapped__(artist)
    assert matching._parts(artist, title) == matching._text_parts.__wrapped__(artist, title)


def test_name_caches_are_bounded() -> None:
    """The caches are LRU with a fixed size, so a long-running worker cannot grow them."""
    for cached in (matching._normalise_name, matching._text_parts):
        assert cached.cache_info().maxsize == matching._CACHE_SIZE
