"""Free-text cleaning for titles, names and labels.

Scraped text arrives with NUL bytes, stray control characters, bidi override marks (U+202E can
make a title render backwards, a classic spoofing trick) and zero-width junk. We keep every real
letter and symbol, including right-to-left scripts and emoji, and remove only invisible control
and format characters. Zero-width joiner/non-joiner and emoji tag characters stay: emoji
sequences and Persian/Indic spelling need them.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from pipeline.normalise.errors import InvalidValue

__all__ = ["MAX_TEXT_LENGTH", "clean_scraped", "clean_text"]

MAX_TEXT_LENGTH = 1000
# Refuse absurd inputs before doing O(n) Unicode work on them.
_MAX_RAW_LENGTH = 100_000
_KEEP_FORMAT = {"\u200c", "\u200d"}  # ZWNJ, ZWJ
_WHITESPACE_RE = re.compile(r"\s+")


def _keep(char: str) -> bool:
    category = unicodedata.category(char)
    if category in ("Cc", "Cs"):
        return False
    if category == "Cf":
        # Tag characters (U+E0020..U+E007F) build subdivision flags such as England's.
        return char in _KEEP_FORMAT or 0xE0020 <= ord(char) <= 0xE007F
    return True


def clean_text(value: Any) -> str:
    """NFC text without control/format characters, whitespace collapsed, 1..1000 characters."""
    if not isinstance(value, str):
        raise InvalidValue("text", value, f"must be a string, got {type(value).__name__}")
    if len(value) > _MAX_RAW_LENGTH:
        raise InvalidValue("text", value, f"longer than {_MAX_RAW_LENGTH} characters")
    # Whitespace controls (tab, newline) become spaces rather than gluing words together.
    spaced = "".join(" " if ch.isspace() else ch for ch in value)
    kept = "".join(ch for ch in spaced if _keep(ch))
    text = _WHITESPACE_RE.sub(" ", unicodedata.normalize("NFC", kept)).strip()
    if not text:
        raise InvalidValue("text", value, "empty after cleaning")
    if len(text) > MAX_TEXT_LENGTH:
        raise InvalidValue("text", value, f"longer than {MAX_TEXT_LENGTH} characters")
    return text


def clean_scraped(value: str | None) -> str | None:
    """A bronze text field (stored exactly as the scraper sent it) as silver and matching use it:
    :func:`clean_text`, with None (and text that cleans to nothing) as None."""
    if value is None:
        return None
    try:
        return clean_text(value)
    except InvalidValue:
        return None
