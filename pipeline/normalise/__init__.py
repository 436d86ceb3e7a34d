"""Pure normalisation of provider values into the canonical forms of docs/CONTRACTS.md.

Every parser raises ``InvalidValue`` (a ``ValueError`` with ``.field``, ``.value``, ``.reason``)
and nothing else, whatever it is given. No I/O, no database, stdlib only.
"""

from pipeline.normalise.bpm import (
    consensus_bpm,
    fold_to_genre,
    parse_bpm,
    reconcile_bpm,
    same_tempo,
)
from pipeline.normalise.dates import ReleaseDate, parse_release_date
from pipeline.normalise.durations import to_ms
from pipeline.normalise.errors import InvalidValue
from pipeline.normalise.genres import CANONICAL_GENRES, genre_for_chart_slug, normalise_genres
from pipeline.normalise.isrc import normalise_isrc, try_isrc
from pipeline.normalise.keys import from_pitch_class, to_camelot, try_camelot
from pipeline.normalise.placeholders import clean_name, is_placeholder
from pipeline.normalise.text import clean_text

__all__ = [
    "CANONICAL_GENRES",
    "InvalidValue",
    "ReleaseDate",
    "clean_name",
    "clean_text",
    "consensus_bpm",
    "fold_to_genre",
    "from_pitch_class",
    "genre_for_chart_slug",
    "is_placeholder",
    "normalise_genres",
    "normalise_isrc",
    "parse_bpm",
    "parse_release_date",
    "reconcile_bpm",
    "same_tempo",
    "to_camelot",
    "to_ms",
    "try_camelot",
    "try_isrc",
]
