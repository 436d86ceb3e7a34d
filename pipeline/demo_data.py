"""Demo input built from the real Beatport chart sample (``pipeline/data``).

Names, genres and chart ranks are real (Beatport top-100 of 2025-10-29, MIT). The setlists are
SIMULATED: they are built from chart tracks for the demo and labelled so in their names and raw
JSON. Every BPM/key/ISRC the demo shows comes from the sandbox catalogue, which is simulated too.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path
from typing import Any

from pipeline.normalise.genres import genre_for_chart_slug

__all__ = ["CHART_CSV", "chart_rows", "demo_envelopes"]

CHART_CSV = Path(__file__).resolve().parent / "data" / "beatport_top100_2025-10-29.csv"
SCRAPED_AT = "2025-10-29T12:00:00Z"


def chart_rows(path: Path = CHART_CSV) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _track(row: dict[str, str]) -> dict[str, Any]:
    return {
        "kind": "track",
        "source": "beatport-charts",
        "source_url": f"https://www.beatport.com/genre/{row['genre']}/top-100",
        "source_track_id": f"{row['genre']}#{row['rank']}",
        "scraper_version": "charts-csv-1.0",
        "scraped_at": SCRAPED_AT,
        "artist_name": row["artists"],
        "track_title": row["title"],
        "raw_json": {
            "chart": row["genre"],
            "rank": int(row["rank"]),
            "artists": row["artists"],
            "title": row["title"],
        },
    }


def _setlist(n: int, genre: str, rows: list[dict[str, str]]) -> dict[str, Any]:
    tracks: list[dict[str, Any]] = []
    for i, row in enumerate(rows, start=1):
        tracks.append(
            {
                "position": len(tracks) + 1,
                "artist": row["artists"],
                "title": row["title"],
                "cue_time": f"{(i - 1) * 4}:00",
            }
        )
        if i == len(rows) // 2:  # every real setlist has an unidentified track or two
            tracks.append({"position": len(tracks) + 1, "artist": "ID", "title": "ID"})
    return {
        "kind": "playlist",
        "source": "1001tracklists",
        "source_url": f"https://www.1001tracklists.com/tracklist/songnodes-demo-{n}",
        "source_playlist_id": f"songnodes-demo-{n}",
        "scraper_version": "demo-1.0",
        "scraped_at": SCRAPED_AT,
        "playlist_name": f"{genre_for_chart_slug(genre).title()} chart set #{n} (simulated)",
        "artist_name": "SongNodes Demo DJ",
        "event_name": f"SongNodes Demo Night {n} (simulated)",
        "event_date": f"2025-11-{n:02d}",
        "raw_json": {"simulated": True, "tracks": tracks},
    }


def demo_envelopes(
    tracks_per_chart: int = 8, setlists: int = 5, setlist_length: int = 24
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(track envelopes: the top ``tracks_per_chart`` of every chart; setlist envelopes)."""
    by_genre: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in chart_rows():
        by_genre[row["genre"]].append(row)
    for rows in by_genre.values():
        rows.sort(key=lambda r: int(r["rank"]))
    tracks = [_track(r) for rows in by_genre.values() for r in rows[:tracks_per_chart]]
    busiest = sorted(by_genre, key=lambda g: -len(by_genre[g]))[:setlists]
    # Setlists overlap the chart tops a little (a few tracks are heard in sets and charted),
    # so deduplication across sources shows in silver.
    start = max(0, tracks_per_chart - 4)
    sets = [
        _setlist(n, genre, by_genre[genre][start : start + setlist_length])
        for n, genre in enumerate(sorted(busiest), start=1)
    ]
    return tracks, sets
