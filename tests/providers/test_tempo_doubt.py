"""The BPM doubt follows the genre the same answer gives (issue 14, item 7), against the sandbox.

Beatport answers bpm and genre in one track object (``genre: {name}``, see providers.md), so its
client judges a 75 BPM reading by the track's own genre. Names are real (Bonobo's "Kerala",
Adam Beyer's "Your Mind"); every value in this catalogue is simulated.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.matching import TrackQuery
from providers.sandbox import start_in_thread

from .conftest import ProviderFactory

CATALOGUE = """artist,title,isrc,bpm,key,genre,beatport.bpm
Bonobo,Kerala,GBCFB1600101,75,5A,Downtempo,
Adam Beyer,Your Mind,SE5BU1800002,128,8A,Techno (Peak Time / Driving),64
"""


def test_beatport_bpm_doubt_by_genre(tmp_path: Path, make_provider: ProviderFactory) -> None:
    """Downtempo at 75: full match confidence. Techno read at 64: doubted (x 0.7)."""
    path = tmp_path / "catalogue.csv"
    path.write_text(CATALOGUE, encoding="utf-8")
    handle = start_in_thread(path)
    try:
        beatport = make_provider("beatport", handle.env)
        kerala = beatport.lookup(TrackQuery("Bonobo", "Kerala"), ["bpm", "genre"])
        mind = beatport.lookup(TrackQuery("Adam Beyer", "Your Mind"), ["bpm", "genre"])
    finally:
        handle.stop()
    assert kerala.values["genre"].value == ["downtempo"]
    assert kerala.values["bpm"].value == 75.0
    assert kerala.values["bpm"].confidence == kerala.match_confidence
    assert mind.values["bpm"].value == 64.0
    assert mind.values["bpm"].confidence == round(mind.match_confidence * 0.7, 4)
