"""Track identity: name normalisation, artist/title splitting, candidate scoring, dedup keys.

Provider searches return several candidates; ``match_confidence`` scores each against what we
asked for and ``best_match`` picks one. ``identity_key`` is the normalised "artists|title" used to
deduplicate silver tracks when no ISRC or provider id links two bronze rows.

Scoring ladder (the numbers are contract, see docs/CONTRACTS.md):

* same ISRC on both sides: 0.99 (0.90 when the names have nothing in common, which happens with
  compilation mis-tags but also with recycled ISRCs);
* same artist set and same base title: 0.95 (0.92 when one side leaves a featured artist out);
* otherwise rapidfuzz token-set similarity of artists and titles, mapped so that a combined
  similarity under 0.7 scores at most 0.42 (never a match) and a perfect fuzzy match 0.90;
* **another version is another track** (issue 14): when the two sides name a different part
  (``Pt. II``, ``Part 2``, ``Vol. 3``) or a different version (a remix by someone else, an
  extended/radio/club/dub/VIP/instrumental/acapella/edit/bootleg/rework mix, a live recording),
  the score is capped at ``VERSION_MISMATCH_CAP`` (under ``ACCEPT_THRESHOLD``, so never accepted).
  Spelling is not a version: ``feat.``/``ft.``/``&``/``x``/``and``, case, accents, punctuation,
  a trailing ``Original Mix``/``Original``/``Main Mix`` and a remaster note compare equal;
* the same base title by an artist set that overlaps but adds a (non-featured) artist is capped
  at ``CREDIT_MISMATCH_CAP``: on a store that is another release (a remixer's or a collab's);
* durations more than 10 s apart cost 0.08, more than 30 s apart 0.30; two valid, different
  ISRCs cost 0.35 (two recordings, even if everything else looks alike). The same ISRC on both
  sides overrides names and versions (the ISRC names the recording).

``tests/data/matching_corpus.csv`` holds the labelled real name pairs the matcher is held to
(``tests/unit/test_matching_corpus.py``, ``python -m bench.matching``).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz

from pipeline.normalise.errors import InvalidValue
from pipeline.normalise.isrc import try_isrc

__all__ = [
    "ACCEPT_THRESHOLD",
    "CREDIT_MISMATCH_CAP",
    "KNOWN_ACTS",
    "VERSION_MISMATCH_CAP",
    "Candidate",
    "TrackQuery",
    "artist_key",
    "best_match",
    "identity_key",
    "match_confidence",
    "normalise_name",
    "split_artists",
    "split_title",
    "version_of",
]

MIN_BEST_MATCH = 0.5
# The lowest score any caller accepts: ``best_match`` returns nothing under it, so no provider
# reports a candidate under it as found (the waterfall's floors, 0.5 and up, sit on top).
ACCEPT_THRESHOLD = MIN_BEST_MATCH
# Scores given to a candidate that is another version or another credit of the asked track:
# under ACCEPT_THRESHOLD (never accepted), still ordered (a remix ranks above an unrelated track).
VERSION_MISMATCH_CAP = 0.35
CREDIT_MISMATCH_CAP = 0.45
# Bound of the memo caches of the pure name functions below: every candidate of every lookup is
# scored against the same query, and charts bring the same names back again and again.
_CACHE_SIZE = 8192


@dataclass(frozen=True)
class TrackQuery:
    """What we are looking for at a provider (re-exported by ``providers.contract``)."""

    artist: str
    title: str
    isrc: str | None = None
    duration_ms: int | None = None
    provider_ids: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Candidate:
    """One search result; ``payload`` is the provider's raw object, carried through untouched."""

    artist: str
    title: str
    duration_ms: int | None = None
    isrc: str | None = None
    payload: Any = None


# Acts whose names contain a separator. Splitting them would invent two artists that do not
# exist and break identity keys, so they are protected before splitting (case-insensitive).
KNOWN_ACTS: tuple[str, ...] = (
    "Above & Beyond",
    "Axwell & Ingrosso",
    "Camo & Krooked",
    "Chase & Status",
    "Dimitri Vegas & Like Mike",
    "Earth, Wind & Fire",
    "Eli & Fur",
    "Faul & Wad",
    "Florence and the Machine",
    "Hall & Oates",
    "Jkyl & Hyde",
    "Kraak & Smaak",
    "Prok & Fitch",
    "Simon & Garfunkel",
    "Sunnery James & Ryan Marciano",
    "Tube & Berger",
    "Walker & Royce",
    "AC/DC",
    "Axwell /\\ Ingrosso",
)
# "&" and "and" inside a known act are one spelling: "Dimitri Vegas and Like Mike" is the act.
_KNOWN_RE = re.compile(
    r"(?<!\w)(?:"
    + "|".join(
        re.escape(a).replace(r"\&", "(?:&|and)").replace(r"\ and\ ", r"\ (?:&|and)\ ")
        for a in sorted(KNOWN_ACTS, key=len, reverse=True)
    )
    + r")(?!\w)",
    re.IGNORECASE,
)
_ARTIST_SEP_RE = re.compile(
    r"""\s*(?:
        &|,|;|/|\s×\s|\s[xX]\s
        |(?<!\w)(?:vs|feat|ft)\.?(?=\s)
        |(?<!\w)(?:featuring|with)(?=\s)
        |\sand\s(?!the\b)
    )\s*""",
    re.VERBOSE | re.IGNORECASE,
)
_FEAT_BRACKET_RE = re.compile(
    r"\s*[(\[]\s*(?:feat\.?|ft\.?|featuring|with)\s+([^)\]]*)[)\]]", re.IGNORECASE
)
_FEAT_TAIL_RE = re.compile(r"\s+(?:feat\.?|ft\.?|featuring)\s+(.+)$", re.IGNORECASE)
# One level of nesting: Beatport disambiguates artists inside mix names, "(BRUX (AUS) Remix)".
_TRAILING_GROUP_RE = re.compile(
    r"\s*(\(((?:[^()]|\([^()]*\))*)\)|\[((?:[^\[\]]|\[[^\[\]]*\])*)\])\s*$"
)
_MIX_WORDS_RE = re.compile(
    r"\b(?:mix|remix|rmx|edit|version|dub|vip|rework|bootleg|refix|flip|instrumental|"
    r"acapella|a cappella|extended|radio|remaster(?:ed)?|live|original|re-?edit|remode)\b",
    re.IGNORECASE,
)
_REMIX_WORDS_RE = re.compile(
    r"\b(?:remix|rmx|vip|dub|rework|bootleg|refix|flip|remode|re-?edit)\b", re.IGNORECASE
)
# Version names that are spelling, not another recording: Beatport's "Original Mix" is the
# track itself, and a remaster note names the same recording. "Extended Mix" is NOT here any
# more (issue 14): an extended cut is another mix, matched and keyed apart from the original.
_NEUTRAL_MIXES = frozenset({"original mix", "original", "original version", "main mix"})
_REMASTER_RE = re.compile(
    r"^(?:(?:\d{4}|digital(?:ly)?|remaster(?:ed)?|version|mix|original|mono|stereo)\s*)+$"
)
# Another part of a work: "Pt. II", "Part 2", "Vol. 3", "Chapter IV". Kept out of the base title
# and compared on its own, so "Phantom" and "Phantom Pt. II" share a base but not a part.
_PART_RE = re.compile(
    r"[\s(\[,:-]*\b(pt|part|vol|volume|chapter|ch)\b\.?\s*([ivx]+|\d+)\b[)\]]?",
    re.IGNORECASE,
)
_ROMAN = {"i": 1, "v": 5, "x": 10}
_MIX_SYNONYMS = {"rmx": "remix", "version": "mix", "vers": "mix", "reedit": "re edit"}
# A version word standing alone ("Extended", "Club") is that mix: "Extended" = "Extended Mix".
_BARE_KINDS = frozenset({"extended", "club", "radio", "dub", "instrumental", "vocal", "main"})
_SPECIAL_LETTERS = str.maketrans(
    {"ø": "o", "æ": "ae", "œ": "oe", "đ": "d", "ł": "l", "þ": "th", "ð": "d", "ı": "i"}
)


def _require_str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidValue(what, value, f"must be a string, got {type(value).__name__}")
    return value


def normalise_name(s: str) -> str:
    """Casefolded, accent-free, ``&``/``+``/``and`` unified, punctuation-free, single-spaced."""
    return _normalise_name(_require_str(s, "name"))


@functools.lru_cache(maxsize=_CACHE_SIZE)  # pure and hot (several calls per candidate name)
def _normalise_name(s: str) -> str:
    # Unicode's caseless match, NFKD(casefold(NFKD(s))): a compatibility character with no case
    # mapping of its own (mathematical 𝖠) decomposes to a letter that still needs folding.
    text = unicodedata.normalize("NFKD", s)
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).translate(_SPECIAL_LETTERS)
    text = re.sub(r"[&+]", " and ", text)
    text = re.sub(r"['’.`´]", "", text)  # "Fred again.." -> "fred again", "D.O.D" -> "dod"
    text = re.sub(r"[\W_]+", " ", text)
    return " ".join(text.split())


def artist_key(name: str) -> str:
    """The key one artist is known by: its normalised name, or the casefolded name when nothing
    survives normalisation (a name of punctuation only). Silver artists are found, locked and
    deduplicated by it."""
    return normalise_name(name) or name.casefold()


def split_artists(s: str) -> list[str]:
    """Individual artist names in order, deduplicated; known multi-word acts kept whole."""
    text = " ".join(_require_str(s, "artist").split())
    text = _FEAT_BRACKET_RE.sub(lambda m: f" feat. {m[1]}", text)
    pieces: list[str] = []
    position = 0
    for match in _KNOWN_RE.finditer(text):
        pieces.extend(_ARTIST_SEP_RE.split(text[position : match.start()]))
        pieces.append(match[0])
        position = match.end()
    pieces.extend(_ARTIST_SEP_RE.split(text[position:]))
    result: list[str] = []
    seen: set[str] = set()
    for piece in pieces:
        name = piece.strip(" \t-")
        key = artist_key(name)
        if name and key not in seen:
            seen.add(key)
            result.append(name)
    return result


def _split_featuring(title: str) -> tuple[str, list[str]]:
    featured: list[str] = []

    def take(match: re.Match[str]) -> str:
        featured.extend(split_artists(match[1]))
        return ""

    text = _FEAT_BRACKET_RE.sub(take, title)
    # A bare "feat. X" runs to the end of the title, the next bracket group or a " - Mix".
    tail = re.search(
        r"\s+(?:feat\.?|ft\.?|featuring)\s+([^()\[\]]+?)(?=\s*[(\[]|\s+-\s|$)", text, re.IGNORECASE
    )
    if tail:
        featured.extend(split_artists(tail[1]))
        text = text[: tail.start()] + text[tail.end() :]
    return " ".join(text.split()), featured


def split_title(s: str) -> tuple[str, str | None]:
    """``(base title, mix name or None)``; featured artists are removed from the title."""
    title, _ = _split_featuring(" ".join(_require_str(s, "title").split()))
    mixes: list[str] = []
    while match := _TRAILING_GROUP_RE.search(title):
        inner = (match[2] if match[2] is not None else match[3]).strip()
        # "(Hear Me Tonight)" is part of the title; only groups that name a version are mixes.
        if not _MIX_WORDS_RE.search(inner) or match.start() == 0:
            break
        mixes.insert(0, inner)
        title = title[: match.start()].rstrip()
    if not mixes and " - " in title:
        head, _, tail = title.rpartition(" - ")
        if head.strip() and _MIX_WORDS_RE.search(tail):
            title, mixes = head.strip(), [tail.strip()]
    mix = " - ".join(m for m in mixes if m) or None
    return title, mix


def _roman(text: str) -> int:
    values = [_ROMAN[c] for c in text]
    return sum(-v if i + 1 < len(values) and v < values[i + 1] else v for i, v in enumerate(values))


def _split_part(title: str) -> tuple[str, str | None]:
    """``(title without its part marker, "part N" | "vol N" | None)``."""
    # The last marker is the part ("Vol. 2 Pt. 3": part 3 of volume 2, rare; keep the last).
    markers = list(_PART_RE.finditer(title))
    match = markers[-1] if markers else None
    if match is None or (match.start() == 0 and match.end() == len(title)):
        return title, None
    kind = "vol" if match[1].casefold().startswith("vol") else "part"
    number = match[2].casefold()
    value = int(number) if number.isdigit() else _roman(number)
    rest = (title[: match.start()] + " " + title[match.end() :]).strip()
    return " ".join(rest.split()) or title, f"{kind} {value}"


def _canonical_mix(mix_norm: str | None) -> str | None:
    """The version a normalised mix name stands for, or None for the track itself."""
    if not mix_norm or mix_norm in _NEUTRAL_MIXES or _REMASTER_RE.match(mix_norm):
        return None
    words = [_MIX_SYNONYMS.get(w, w) for w in mix_norm.replace("re edit", "reedit").split()]
    words = " ".join(words).split()
    if len(words) == 1 and words[0] in _BARE_KINDS:
        words.append("mix")
    return " ".join(words)


def version_of(title: str) -> tuple[str | None, str | None]:
    """``(part, version)`` a title names, both canonical and None for "the track itself"."""
    parts = _text_parts("", " ".join(_require_str(title, "title").split()))
    return parts.part, parts.mix


@dataclass(frozen=True)
class _Parts:
    artists: frozenset[str]
    base: str
    mix: str | None  # canonical version; None for absent or neutral ("original"-like) versions
    artists_text: str  # the artists sorted and space-joined, as the fuzzy comparison wants them
    part: str | None = None  # "part 2", "vol 3": another part is another track
    featured: frozenset[str] = frozenset()  # artists named after feat./ft./with


def _parts(artist: Any, title: Any) -> _Parts:
    artist_text = artist if isinstance(artist, str) else ""
    title_text = title if isinstance(title, str) else ""
    return _text_parts(artist_text, title_text)


@functools.lru_cache(maxsize=_CACHE_SIZE)  # pure; _Parts is immutable, so sharing it is safe
def _text_parts(artist_text: str, title_text: str) -> _Parts:
    base, featured = _split_featuring(" ".join(title_text.split()))
    base, mix = split_title(base)
    base, part = _split_part(base)
    mix_norm = normalise_name(mix) if mix else None
    if mix_norm and part is None:
        # "(Part 2)" or "- Vol. 3 Mix" sits in the mix slot on some stores.
        rest, part = _split_part(mix_norm)
        if part is not None:
            mix_norm = None if rest == mix_norm else rest
    names = {normalise_name(a) for a in [*split_artists(artist_text), *featured]} - {""}
    featured_names = {normalise_name(a) for a in featured}
    tail = re.search(r"(?<!\w)(?:feat|ft|featuring)\.?\s+(.+)$", artist_text, re.IGNORECASE)
    if tail:
        featured_names |= {normalise_name(a) for a in split_artists(tail[1])}
    if mix_norm and _REMIX_WORDS_RE.search(mix_norm):
        # Remixers are credited in the artist field by some sources and only in the mix name by
        # others; drop them from the set (when someone else remains) so both spellings agree.
        others = {n for n in names if f" {n} " not in f" {mix_norm} "}
        names = others or names
    return _Parts(
        frozenset(names),
        normalise_name(base),
        _canonical_mix(mix_norm),
        " ".join(sorted(names)),
        part,
        frozenset(featured_names - {""}) & frozenset(names),
    )


def identity_key(artist: str, title: str) -> str:
    """``"artist1,artist2|base title [part N] (version)"``: order-insensitive artists, neutral
    mixes dropped. Two names get one key exactly when the matcher calls them the same version:
    "Original Mix" and no mix share a key, "Extended Mix" (= "Extended") has its own, and so
    does every part ("Pt. II" = "Part 2")."""
    _require_str(artist, "artist")
    _require_str(title, "title")
    parts = _parts(artist, title)
    artists = ",".join(sorted(parts.artists)) or " ".join(artist.casefold().split())
    base = parts.base or " ".join(title.casefold().split())
    if parts.part:
        base = f"{base} [{parts.part}]"
    return f"{artists}|{base} ({parts.mix})" if parts.mix else f"{artists}|{base}"


def _same_version(a: _Parts, b: _Parts) -> bool:
    return a.part == b.part and a.mix == b.mix


def _artists_agree(a: _Parts, b: _Parts) -> bool:
    """The same artist set, or one side leaving out artists the other names as featured."""
    if a.artists == b.artists:
        return True
    if not a.artists or not b.artists:
        return False
    return a.artists - a.featured == b.artists or b.artists - b.featured == a.artists or (
        bool(a.artists - a.featured) and a.artists - a.featured == b.artists - b.featured
    )


def _unmatched(a: _Parts, b: _Parts) -> set[str]:
    """Artists of ``a`` (featured ones aside) with no counterpart in ``b``; a near spelling
    ("Skrilex" for "Skrillex") is a counterpart."""
    return {
        name
        for name in a.artists - a.featured
        if name not in b.artists and not any(fuzz.ratio(name, o) >= 85 for o in b.artists)
    }


def _other_credit(a: _Parts, b: _Parts) -> bool:
    """The sides share an artist but one credits a (non-featured) artist the other lacks: on a
    store, a remixer's or a collaboration's release of the same title."""
    if not a.artists or not b.artists or not a.artists & b.artists:
        return False
    return bool(_unmatched(a, b) or _unmatched(b, a))


def _similar(a: str, b: str) -> float:
    # token_set_ratio alone scores a subset as 100 ("Energy" vs "Energy Flow"); averaging with
    # token_sort_ratio keeps word-order tolerance but charges for the extra words.
    return (fuzz.token_set_ratio(a, b) + fuzz.token_sort_ratio(a, b)) / 2.0


def _name_similarity(a: _Parts, b: _Parts) -> float:
    artists = _similar(a.artists_text, b.artists_text)
    titles = _similar(a.base, b.base)
    # Geometric mean: the right artist with the wrong title (or vice versa) must stay low.
    return float((artists / 100.0) * (titles / 100.0)) ** 0.5


def _duration_penalty(query: TrackQuery, candidate: Candidate) -> float:
    q, c = query.duration_ms, candidate.duration_ms
    if (
        not isinstance(q, int)
        or not isinstance(c, int)
        or isinstance(q, bool)
        or isinstance(c, bool)
    ):
        return 0.0
    if q <= 0 or c <= 0:
        return 0.0
    diff = abs(q - c)
    if diff > 30_000:
        return 0.30
    if diff > 10_000:
        return 0.08
    return 0.0


def match_confidence(query: TrackQuery, candidate: Candidate) -> float:
    """How sure we are that ``candidate`` is the track ``query`` describes, in [0, 1]."""
    return _score(query, _parts(query.artist, query.title), try_isrc(query.isrc), candidate)


def _score(query: TrackQuery, q: _Parts, isrc_q: str | None, candidate: Candidate) -> float:
    c = _parts(candidate.artist, candidate.title)
    isrc_c = try_isrc(candidate.isrc)
    duration_penalty = _duration_penalty(query, candidate)
    similarity = _name_similarity(q, c)
    if isrc_q and isrc_q == isrc_c:
        # The ISRC names the recording; durations from different stores only weakly disagree.
        score = (0.99 if similarity >= 0.5 else 0.90) - duration_penalty / 2
    else:
        same_base = bool(q.base) and q.base == c.base
        if q.artists and q.artists == c.artists and same_base:
            score = 0.95
        elif same_base and _artists_agree(q, c):
            score = 0.92  # a featured artist left out on one side
        elif similarity < 0.7:
            score = similarity * 0.6
        else:
            score = 0.42 + (similarity - 0.7) / 0.3 * 0.48
        if not _same_version(q, c):
            score = min(score, VERSION_MISMATCH_CAP)
        elif not _artists_agree(q, c) and _other_credit(q, c):
            score = min(score, CREDIT_MISMATCH_CAP)
        score -= duration_penalty
        if isrc_q and isrc_c:
            score -= 0.35
    return round(min(1.0, max(0.0, score)), 4)


def best_match(
    query: TrackQuery, candidates: Iterable[Candidate]
) -> tuple[Candidate, float] | None:
    """The highest-scoring candidate (first wins ties), or None when it scores under 0.5."""
    # The query's side of the comparison is the same for every candidate: work it out once.
    q, isrc_q = _parts(query.artist, query.title), try_isrc(query.isrc)
    best: tuple[Candidate, float] | None = None
    for candidate in candidates:
        score = _score(query, q, isrc_q, candidate)
        if best is None or score > best[1]:
            best = (candidate, score)
    if best is None or best[1] < MIN_BEST_MATCH:
        return None
    return best
