"""Placeholder names that stand for "nobody" or "none": never a value (issue 14).

Catalogues fill a field they cannot answer with a word that looks like a value: Discogs prints
``Not On Label`` (and ``Not On Label (Artist Self-released)``) for a self-released record and
``Various`` for a compilation's artist; MusicBrainz credits ``[unknown]`` and ``Various
Artists`` (its special-purpose artists); stores print ``Various Artists`` for compilations.
Stored as a label or an artist, such a word would make every self-released record one label and
every compilation one artist. ``clean_name`` refuses them (``InvalidValue``), so a provider's
placeholder lands in ``LookupResult.rejected`` with the reason, and merge never takes one.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from pipeline.normalise.errors import InvalidValue
from pipeline.normalise.text import clean_text

__all__ = ["PLACEHOLDER_NAMES", "clean_name", "is_placeholder"]

# Compared after casefolding, dropping accents, brackets and punctuation.
PLACEHOLDER_NAMES = frozenset(
    {
        "various",
        "various artists",
        "va",
        "v a",
        "unknown",
        "unknown artist",
        "unknown label",
        "no artist",
        "no label",
        "not on label",
        "none",
        "n a",
        "self released",
        "anonymous artist",
    }
)
# Discogs qualifies its "no label" entry: "Not On Label (Artist Self-released)".
_PREFIXES = ("not on label ",)
_PUNCTUATION = re.compile(r"[\W_]+")


def _folded(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(_PUNCTUATION.sub(" ", plain).split())


def is_placeholder(value: Any) -> bool:
    """True for a string that names no one (``Various Artists``, ``[unknown]``, ...)."""
    if not isinstance(value, str):
        return False
    folded = _folded(value)
    return folded in PLACEHOLDER_NAMES or folded.startswith(_PREFIXES)


def clean_name(value: Any) -> str:
    """``clean_text`` for an artist or label name, refusing placeholders."""
    text = clean_text(value)
    if is_placeholder(text):
        raise InvalidValue("name", value, "a placeholder, not a name")
    return text
