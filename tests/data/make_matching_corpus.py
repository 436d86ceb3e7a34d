"""Builds ``matching_corpus.csv``: labelled name pairs the matcher is held to (issue 14).

Run from the repository root: ``python tests/data/make_matching_corpus.py``. The output is
committed; this script is kept so anyone can see (and redo) how each group was made. It never
looks at the matcher: labels come from the data and from the rule in the issue (another part,
another mix, a live recording is another track; spelling is not).

Groups (the ``group`` column), and where each comes from:

* ``chart-repeat`` (same): the same Beatport entry printed in two genre charts of
  ``/work/shared/data/beatport_top100_2025-10-29.csv`` (exact or with stray whitespace).
* ``chart-same-title`` (different): two chart entries with the same title by disjoint artists.
* ``chart-credits`` (different): two chart entries with the same title whose artist credits
  overlap but differ by a non-featured artist (on Beatport, a remixer's or a collab's release;
  the chart prints the title without the mix name).
* ``chart-parts`` (different): two chart entries that are two parts of one work.
* ``store-spelling`` (same): a real chart entry against the way another store or a tracklist
  site spells it (comma-joined artists as Spotify/Deezer print them, reversed order, ``feat.``
  moved between artist and title, ``ft.``/``x``/``and`` for ``&``, case, accents dropped,
  punctuation dropped, a trailing ``Original Mix``). The transformation is named in ``note``.
* ``version-variants`` (different): a real chart entry against another version of it (another
  part, an extended/radio/club/dub/VIP/instrumental/acapella/edit/bootleg/rework mix, a remix
  by another real chart artist, a live recording). The variant is named in ``note``.
* ``version-spelling`` (same): one version spelled two ways (``Extended`` = ``Extended Mix``,
  ``Pt. II`` = ``Part 2``, ``- X Remix`` = ``(X Remix)``, ``Rmx`` = ``Remix``).
* ``public-tracklists``: names from public tracklists and articles (URLs in ``source``), plus
  the issue's own case (Justice, Phantom Pt. II).
"""

from __future__ import annotations

import csv
import itertools
import unicodedata
from collections import defaultdict
from pathlib import Path

# The repository's copy of /work/shared/data/beatport_top100_2025-10-29.csv (byte-identical).
CHART = Path(__file__).parents[2] / "pipeline" / "data" / "beatport_top100_2025-10-29.csv"
OUT = Path(__file__).with_name("matching_corpus.csv")
CHART_SOURCE = "beatport_top100_2025-10-29.csv"
FIELDS = ["group", "same", "query_artist", "query_title", "candidate_artist", "candidate_title",
          "note", "source"]  # fmt: skip


def _plain(title: str) -> bool:
    low = title.casefold()
    return "(" not in title and " - " not in title and not any(
        w in low.split() for w in ("pt", "pt.", "part", "vol", "vol.", "mix", "remix", "edit")
    )


def _artists(text: str) -> frozenset[str]:
    return frozenset(a.strip().casefold() for a in text.split("&"))


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def main() -> None:
    with CHART.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    out: list[dict[str, str]] = []

    def add(group: str, same: bool, qa: str, qt: str, ca: str, ct: str, note: str,
            src: str) -> None:  # fmt: skip
        out.append({"group": group, "same": "1" if same else "0", "query_artist": qa,
                    "query_title": qt, "candidate_artist": ca, "candidate_title": ct,
                    "note": note, "source": src})  # fmt: skip

    # chart-repeat: one entry in several charts.
    by_entry: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        by_entry[(r["artists"].strip(), r["title"].strip().casefold())].append(r)
    for entries in by_entry.values():
        genres = {e["genre"] for e in entries}
        if len(genres) > 1:
            a, b = entries[0], next(e for e in entries if e["genre"] != entries[0]["genre"])
            add("chart-repeat", True, a["artists"], a["title"], b["artists"], b["title"],
                f"{a['genre']} #{a['rank']} / {b['genre']} #{b['rank']}", CHART_SOURCE)  # fmt: skip

    # same title, different artists: disjoint -> chart-same-title, overlapping -> chart-credits.
    by_title: dict[str, dict[str, str]] = {}
    titles: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for r in rows:
        key = (r["artists"].strip(), r["title"].strip())
        if key in by_title:
            continue
        by_title[key] = r  # type: ignore[index]
        titles[r["title"].strip().casefold()].append(key)
    for _, entries in sorted(titles.items()):
        for (a1, t1), (a2, t2) in itertools.combinations(entries, 2):
            s1, s2 = _artists(a1), _artists(a2)
            if s1 == s2:
                continue
            group = "chart-credits" if s1 & s2 else "chart-same-title"
            add(group, False, a1, t1, a2, t2, "same title, other artists", CHART_SOURCE)
    for r1, r2 in itertools.combinations(rows, 2):
        t1, t2 = r1["title"], r2["title"]
        if (
            r1["artists"] == r2["artists"] and "(Part" in t1 and "(Part" in t2 and t1 != t2
            and t1.split(" (Part")[0] == t2.split(" (Part")[0]
        ):  # fmt: skip
            add("chart-parts", False, r1["artists"], t1, r2["artists"], t2, "parts", CHART_SOURCE)
            break

    # store-spelling and version-variants: a deterministic sample of distinct plain entries.
    plain = sorted(
        {(r["artists"].strip(), r["title"].strip()) for r in rows if _plain(r["title"])},
        key=lambda e: (e[1].casefold(), e[0]),
    )
    multi = [e for e in plain if " & " in e[0]]
    accented = [e for e in plain if _strip_accents(e[0] + e[1]) != e[0] + e[1]]
    featured = sorted(
        {
            (r["artists"].strip(), r["title"].strip())
            for r in rows
            if r["title"].strip().endswith(")") and r["title"].count("(") == 1
            and "(feat. " in r["title"]
        }
    )
    stride = max(1, len(multi) // 60)
    for i, (a, t) in enumerate(multi[::stride][:60]):
        names = [n.strip() for n in a.split("&")]
        spelled = [
            (", ".join(names), t, "artists comma-joined (Spotify/Deezer)"),
            (" & ".join(reversed(names)), t, "artist order reversed"),
            (" x ".join(names), t, "x for &"),
            (" and ".join(names), t, "and for &"),
        ][i % 4]
        add("store-spelling", True, a, t, spelled[0], spelled[1], spelled[2], CHART_SOURCE)
    singles = [e for e in plain if " & " not in e[0]]
    stride = max(1, len(singles) // 60)
    for i, (a, t) in enumerate(singles[::stride][:60]):
        spelled = [
            (a, f"{t} (Original Mix)", "trailing (Original Mix)"),
            (a, f"{t} - Original Mix", "trailing - Original Mix"),
            (a.upper(), t.lower(), "case"),
            (a, t.replace("'", "").replace(".", "").replace(",", "").replace("!", ""),
             "punctuation dropped"),
            (a.lower(), f"{t.upper()} (Original)", "case and (Original)"),
        ][i % 5]  # fmt: skip
        add("store-spelling", True, a, t, spelled[0], spelled[1], spelled[2], CHART_SOURCE)
    for a, t in accented[:25]:
        add("store-spelling", True, a, t, _strip_accents(a), _strip_accents(t),
            "accents dropped", CHART_SOURCE)  # fmt: skip
    for a, t in featured[:25]:
        base, _, rest = t.partition(" (feat. ")
        guest = rest.rstrip(")")
        main = " & ".join(n for n in (x.strip() for x in a.split("&")) if n not in guest)
        spelled = [
            (f"{main} feat. {guest}", base, "feat. in the artist field"),
            (f"{main} ft. {guest}", base, "ft. in the artist field"),
            (main or a, t.replace("(feat. ", "(ft. "), "ft. in the title"),
        ][len(out) % 3]
        add("store-spelling", True, a, t, spelled[0], spelled[1], spelled[2], CHART_SOURCE)

    variants = [
        "{t} (Extended Mix)", "{t} - Extended", "{t} (Radio Edit)", "{t} (Club Mix)",
        "{t} (Dub)", "{t} (VIP)", "{t} (Instrumental)", "{t} (Acapella)", "{t} (Edit)",
        "{t} (Bootleg)", "{t} (Rework)", "{t} (Live)", "{t} - Live at Printworks",
        "{t} Pt. II", "{t} (Part 2)", "{t} Vol. 3", "{t} ({r} Remix)", "{t} - {r} Remix",
        "{t} ({r} Extended Remix)", "{t} ({r} Edit)",
    ]  # fmt: skip
    remixers = sorted({a for a, _ in singles})
    stride = max(1, len(plain) // 140)
    for i, (a, t) in enumerate(plain[1::stride][:140]):
        pattern = variants[i % len(variants)]
        remixer = remixers[(i * 7) % len(remixers)]
        if remixer.casefold() in a.casefold():
            remixer = remixers[(i * 7 + 1) % len(remixers)]
        variant = pattern.format(t=t, r=remixer)
        note = pattern.format(t="", r="<other artist>").strip(" -")
        if i % 3 == 0:  # the scraper names the version, the store has the original
            add("version-variants", False, a, variant, a, t, note, CHART_SOURCE)
        else:
            add("version-variants", False, a, t, a, variant, note, CHART_SOURCE)
    # two remixes of one title by two different (real) artists
    for i, (a, t) in enumerate(plain[2::stride][:20]):
        r1, r2 = remixers[(i * 11) % len(remixers)], remixers[(i * 11 + 5) % len(remixers)]
        add("version-variants", False, a, f"{t} ({r1} Remix)", a, f"{t} ({r2} Remix)",
            "two remixers", CHART_SOURCE)  # fmt: skip

    # version-spelling: one version, two spellings.
    for i, (a, t) in enumerate(plain[3::stride][:30]):
        remixer = remixers[(i * 13) % len(remixers)]
        spelled = [
            (f"{t} (Extended Mix)", f"{t} - Extended", "Extended = Extended Mix"),
            (f"{t} Pt. II", f"{t} (Part 2)", "Pt. II = Part 2"),
            (f"{t} ({remixer} Remix)", f"{t} - {remixer} Remix", "(X Remix) = - X Remix"),
            (f"{t} ({remixer} Remix)", f"{t} ({remixer} Rmx)", "Remix = Rmx"),
            (f"{t} (Radio Edit)", f"{t.upper()} (RADIO EDIT)", "case of a version"),
            (f"{t} (Extended Version)", f"{t} (Extended Mix)", "Version = Mix"),
        ][i % 6]
        add("version-spelling", True, a, spelled[0], a, spelled[1], spelled[2], CHART_SOURCE)

    for row in PUBLIC:
        add("public-tracklists", *row)  # type: ignore[arg-type]

    with OUT.open("w", newline="", encoding="utf-8") as handle:
        handle.write("# Labelled name pairs for pipeline.matching; how they were made: "
                     "tests/data/make_matching_corpus.py\n")  # fmt: skip
        writer = csv.DictWriter(handle, FIELDS)
        writer.writeheader()
        writer.writerows(out)
    print(len(out), "pairs ->", OUT)


_DUBHED = "https://dubhed.blogspot.com/2024/06/theres-always-help-if-you-know-where-to.html"
_REWIND = "https://rewindtheparty.blogspot.com/2010/01/ipod-rotation-material-this-one-is-from.html"
_DEFECTED = "https://defected.com/news/post/16-definitive-remixes"
_KERRI = "http://robwarner.blogspot.com/2009/03/kerri-chandler-track-1-revisited-remix.html"
_MIX65 = "https://almerianwriters.com/?p=280"
_TRANCE = "https://www.tranceforum.info/forum/thread/4466-salt-tank-eugina/?postID=123456"
_ISSUE = "issue 14 (a 1001Tracklists setlist)"
_ALCAZAR = "https://scandipop.co.uk/alcazar-%e2%80%93-%e2%80%98burning%e2%80%99-the-remixes"
_SEXY = "https://tommywoelfel.blogspot.com/2013/09/track-list-sexy-spin-thursday-september_12.html"
_BNU = "https://bringnewunity.com/artist-guide/song-mixes-titles"
_CHER = "http://randsachsenblog.blogspot.com/2010/01/cd-rezensionen-178-cher-believe-mcd.html"
_KIEZ = "https://www.tanzdurchdenkiez.de/2010/09/"
_BURNING = ["Cahill Remix", "Extended Mix", "Daz Bailey Mix", "Alex K Mix", "Jorg Schmid Mix",
            "Cahill Club Edit", "UK Radio Edit"]  # fmt: skip
PUBLIC: list[tuple[bool, str, str, str, str, str, str]] = [
    (False, "Justice", "Phantom Pt. II", "Justice", "Phantom", "another part", _ISSUE),
    (True, "Justice", "Phantom Pt. II", "Justice", "Phantom Part 2", "part spelling", _ISSUE),
    (False, "Nas", "It Ain't Hard To Tell (Acapella)", "Nas",
     "It Ain't Hard To Tell (Instrumental)", "acapella vs instrumental", _REWIND),
    (False, "Nas", "It Ain't Hard To Tell (Instrumental)", "Nas", "It Ain't Hard To Tell",
     "instrumental vs original", _REWIND),
    (True, "Nas", "It Ain’t Hard To Tell", "Nas", "It Ain't Hard To Tell", "curly apostrophe",
     _REWIND),
    (False, "SWV", "Right Here (Demolition Mix)", "SWV", "Right Here", "named mix", _REWIND),
    (False, "Dwele", "Tribute to Michael Jackson (Re-edit)", "Dwele",
     "Tribute to Michael Jackson", "re-edit", _REWIND),
    (False, "Kerri Chandler", "Track 1 Revisited (Bigga Mix)", "Kerri Chandler",
     "Track 1 Revisited (New Old School Mix)", "two named mixes", _KERRI),
    (False, "Kerri Chandler", "Track 1 Revisited (Bigga Mix)", "Kerri Chandler", "Track 1",
     "named mix vs original", _KERRI),
    (True, "Drum Club ft. Wonder", "Sound System (Underworld Mix)", "Drum Club feat. Wonder",
     "Sound System (Underworld Mix)", "ft. = feat.", _DUBHED),
    (False, "Drum Club ft. Wonder", "Sound System (Underworld Mix)", "Drum Club",
     "Sound System", "remix vs original", _DUBHED),
    (False, "Sven Väth", "L'Esperanza (Hope Will Move Mountains Mix)", "Sven Väth",
     "L'Esperanza", "named mix vs original", _DUBHED),
    (True, "Sven Väth", "L'Esperanza", "Sven Vath", "L Esperanza", "accents, punctuation",
     _DUBHED),
    (False, "Apollo 440", "Liquid Cool (Space Colonization Remix)", "Apollo 440",
     "Liquid Cool", "remix vs original", _DUBHED),
    (False, "Suzuki K1", "Satellite Serenade (Saturday Mix)", "Suzuki K1",
     "Satellite Serenade (Sunday Mix)", "two named mixes", _DUBHED),
    (False, "Hercules & Love Affair", "Blind (Frankie Knuckles Remix)",
     "Hercules & Love Affair", "Blind", "remix vs original", _DEFECTED),
    (True, "Hercules & Love Affair", "Blind (Frankie Knuckles Remix)", "Hercules and Love Affair",
     "Blind - Frankie Knuckles Remix", "& = and, dash mix", _DEFECTED),
    (False, "De'Lacy", "Hideaway (Deep Dish Remix)", "De'Lacy", "Hideaway", "remix", _DEFECTED),
    (True, "De'Lacy", "Hideaway (Deep Dish Remix)", "DeLacy", "Hideaway (Deep Dish Rmx)",
     "punctuation, Rmx", _DEFECTED),
    (False, "Robin S", "Show Me Love (Dubdogz Remix)", "Robin S.", "Show Me Love", "remix",
     _MIX65),
    (True, "Robin S", "Show Me Love", "Robin S.", "Show Me Love (Original Mix)",
     "punctuation, Original Mix", _MIX65),
    (False, "Blondie", "Atomic (Strauss Remix)", "Blondie", "Atomic (Diddy Remix)",
     "two remixers", _MIX65),
    (False, "Salt Tank", "Eugina (Michael Woods Remix)", "Salt Tank", "Eugina (Tiësto Remix)",
     "two remixers", _TRANCE),
    (True, "Salt Tank", "Eugina (Tiësto Remix)", "SALT TANK", "Eugina (Tiesto Remix)",
     "case, accents", _TRANCE),
    # Alcazar's "Burning" remix package: every version apart from every other, and the original.
    *[(False, "Alcazar", f"Burning ({a})", "Alcazar", f"Burning ({b})", "two versions", _ALCAZAR)
      for i, a in enumerate(_BURNING) for b in _BURNING[i + 1:]],
    *[(False, "Alcazar", f"Burning ({a})", "Alcazar", "Burning", "version vs original", _ALCAZAR)
      for a in _BURNING],
    (True, "Alcazar", "Burning (UK Radio Edit)", "ALCAZAR", "Burning - UK Radio Edit",
     "case, dash version", _ALCAZAR),
    (False, "Cher featuring Lady Gaga", "The Greatest Thing (remix)", "Cher & Lady Gaga",
     "The Greatest Thing", "remix vs original", _SEXY),
    (True, "Cher featuring Lady Gaga", "The Greatest Thing", "Cher feat. Lady Gaga",
     "The Greatest Thing", "featuring = feat.", _SEXY),
    (True, "Cher featuring Lady Gaga", "The Greatest Thing", "Cher",
     "The Greatest Thing (feat. Lady Gaga)", "featuring moved to the title", _SEXY),
    (False, "Benny Benassi featuring John Legend", "Dance The Pain Away (remix)",
     "Benny Benassi featuring John Legend", "Dance The Pain Away", "remix vs original", _SEXY),
    (True, "Benny Benassi featuring John Legend", "Dance The Pain Away",
     "Benny Benassi (ft. John Legend)", "Dance the Pain Away", "(ft. X) in the artist", _BNU),
    (False, "Miley Cyrus", "Wrecking Ball (remix)", "Miley Cyrus", "Wrecking Ball",
     "remix vs original", _SEXY),
    (True, "Miley Cyrus", "Wrecking Ball", "Miley Cyrus", "Wrecking Ball (Original Mix)",
     "Original Mix", _SEXY),
    (False, "Lorde", "Royals (remix)", "Lorde", "Royals", "remix vs original", _SEXY),
    (False, "Lana Del Rey", "Summertime Sadness (remix)", "Lana Del Rey", "Summertime Sadness",
     "remix vs original", _SEXY),
    (False, "Michael Jackson featuring Justin Bieber", "Slave 2 The Rhythm (remix)",
     "Michael Jackson & Justin Bieber", "Slave 2 The Rhythm", "remix vs original", _SEXY),
    (False, "Cher", "Believe (Almighty Definitive Mix)", "Cher", "Believe (Xenomania Mix)",
     "two named mixes", _CHER),
    (False, "Cher", "Believe (Almighty Definitive Mix)", "Cher", "Believe (Radio Edit)",
     "named mix vs radio edit", _CHER),
    (False, "Chilly Gonzales", "I am Europe (Dirty Doering Remix)", "Chilly Gonzales",
     "I Am Europe", "remix vs original", _KIEZ),
    (True, "Chilly Gonzales", "I am Europe (Dirty Doering Remix)", "Chilly Gonzales",
     "I Am Europe - Dirty Doering Remix", "case, dash remix", _KIEZ),
    (True, "Joachim Pastor", "Le Poulain", "Joachim Pastor", "Le Poulain (Original Mix)",
     "Original Mix", _KIEZ),
    (True, "Artist", "Title (Remixer Extended Mix)", "Artist", "Title - Remixer Extended Mix",
     "the titling guide's own form", _BNU),
    (False, "Artist", "Title (Remixer Extended Mix)", "Artist", "Title (Remixer Radio Mix)",
     "the titling guide's two remix cuts", _BNU),
]


if __name__ == "__main__":
    main()
