"""Build ``data/catalogue.csv`` from the Beatport top-100 charts.

Artist, title and genre are real (``pipeline/data/beatport_top100_2025-10-29.csv``). Everything
else (ISRC, BPM, key, duration, label, release date, energy, danceability, valence) is SIMULATED,
deterministically from a hash of artist + title, with BPM drawn from the genre's usual range.
A few per-provider overrides exercise the awkward cases (see README.md).

Run: ``.venv/bin/python -m providers.sandbox.build_catalogue [--out PATH]``.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import io
from pathlib import Path

from pipeline.normalise.genres import genre_for_chart_slug
from pipeline.normalise.keys import ALL_KEYS
from providers.sandbox.catalogue import BASE_COLUMNS, DEFAULT_CATALOGUE

__all__ = ["OVERRIDE_COLUMNS", "build", "main"]

SOURCE = (
    Path(__file__).resolve().parents[2] / "pipeline" / "data" / "beatport_top100_2025-10-29.csv"
)
OVERRIDE_COLUMNS = (
    "beatport.bpm",
    "spotify.missing",
    "deezer.bpm",
    "lastfm.genre",
    "getsongbpm.bpm",
    "tidal.key",
    "musicbrainz.missing",
)
# Typical tempo range per chart (lower, upper); anything unlisted is house-like.
_BPM_RANGE = {
    "140-deep-dubstep-grime": (138, 142),
    "amapiano": (110, 115),
    "ambient-experimental": (70, 110),
    "brazilian-funk": (125, 135),
    "breaks-breakbeat-uk-bass": (128, 136),
    "dance-pop": (100, 126),
    "downtempo": (85, 110),
    "drum-bass": (170, 176),
    "dubstep": (140, 150),
    "electronica": (100, 125),
    "hard-dance-hardcore-neo-rave": (150, 175),
    "hard-techno": (145, 160),
    "mainstage": (126, 130),
    "psy-trance": (138, 145),
    "techno-peak-time-driving": (128, 138),
    "techno-raw-deep-hypnotic": (126, 135),
    "trance-main-floor": (136, 140),
    "trance-raw-deep-hypnotic": (134, 140),
    "trap-future-bass": (140, 160),
    "uk-garage-bassline": (130, 136),
}
_LABELS = (
    "Drumcode",
    "Defected",
    "Anjunadeep",
    "Toolroom",
    "Hospital Records",
    "Afterlife",
    "Dirtybird",
    "Kompakt",
)
_SEP = " & "


def _h(text: str, salt: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{salt}|{text}".encode()).digest()[:8], "big")


def _row(slug: str, artist: str, title: str, n: int) -> dict[str, str]:
    ident = f"{artist}|{title}"
    lo, hi = _BPM_RANGE.get(slug, (120, 126))
    bpm = lo + _h(ident, "bpm") % (hi - lo + 1)
    day = dt.date(2015, 1, 1) + dt.timedelta(days=_h(ident, "date") % 3900)
    energy = 0.35 + (_h(ident, "energy") % 600) / 1000
    row = {
        "artist": artist,
        "title": title,
        "isrc": f"QZ{'ABCDEFGHJK'[_h(ident, 'cc') % 10]}{'LMNPR'[_h(ident, 'r') % 5]}S"
        f"{day.year % 100:02d}{_h(ident, 'isrc') % 100000:05d}",
        "duration_ms": str(150_000 + _h(ident, "dur") % 270_000),
        "bpm": str(bpm),
        "key": ALL_KEYS[_h(ident, "key") % 24],
        "genre": genre_for_chart_slug(slug) or slug,
        "label": _LABELS[_h(ident, "label") % len(_LABELS)],
        "release_date": day.isoformat(),
        "energy": f"{energy:.3f}",
        "danceability": f"{0.4 + (_h(ident, 'dance') % 550) / 1000:.3f}",
        "valence": f"{(_h(ident, 'valence') % 1000) / 1000:.3f}",
    }
    overrides = dict.fromkeys(OVERRIDE_COLUMNS, "")
    if n % 17 == 3 and bpm >= 120:
        overrides["beatport.bpm"] = str(bpm // 2)  # half-time reading on one store
    if n % 11 == 5:
        overrides["spotify.missing"] = "1"
    if n % 23 == 7:
        overrides["musicbrainz.missing"] = "1"
    if n % 19 == 2:
        overrides["deezer.bpm"] = "0"  # Deezer's "unknown"
    if n % 13 == 4:
        overrides["lastfm.genre"] = f"seen live;{row['genre']};favourites"
    if n % 31 == 9:
        overrides["getsongbpm.bpm"] = f"{bpm}bpm"  # garbage that must be rejected, not parsed
    if n % 37 == 11:
        overrides["tidal.key"] = "H minor"  # German spelling: rejected, never guessed
    return {**row, **overrides}


def build(source: Path = SOURCE) -> str:
    """The catalogue CSV text (deduplicated on artist + title, chart order)."""
    seen: set[tuple[str, str]] = set()
    rows: list[dict[str, str]] = []
    with source.open(encoding="utf-8") as fh:
        for chart in csv.DictReader(fh):
            artist, title = chart["artists"].strip(), chart["title"].strip()
            if not artist or not title or (artist.casefold(), title.casefold()) in seen:
                continue
            seen.add((artist.casefold(), title.casefold()))
            rows.append(_row(chart["genre"], artist, title, len(rows)))
    out = io.StringIO()
    out.write(
        "# SongNodes sandbox catalogue. artist/title/genre: Beatport top-100 charts 2025-10-29.\n"
    )
    out.write(
        "# SIMULATED (hash of artist+title): isrc, duration_ms, bpm, key, label, release_date,\n"
    )
    out.write("# energy, danceability, valence and every override column. Not real metadata.\n")
    writer = csv.DictWriter(out, fieldnames=[*BASE_COLUMNS, *OVERRIDE_COLUMNS], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_CATALOGUE)
    args = parser.parse_args()
    args.out.write_text(build(), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
