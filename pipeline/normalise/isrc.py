"""ISRC validation: ``GB-DUW-00-00059`` -> ``GBDUW0000059``.

An ISRC is country (2 letters), registrant (3 alphanumerics), year (2 digits) and designation
(5 digits). We accept the dashed/spaced display form and lower case, nothing else: a malformed
ISRC used as an identity key would merge unrelated tracks, so we reject rather than repair.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from pipeline.normalise.errors import InvalidValue

__all__ = ["ISRC_RE", "normalise_isrc", "try_isrc"]

ISRC_RE = re.compile(r"^[A-Z]{2}[A-Z0-9]{3}[0-9]{7}$")
_FIELD = "isrc"


def normalise_isrc(value: Any) -> str:
    """Canonical 12-character ISRC; raises ``InvalidValue`` when it is not one."""
    if not isinstance(value, str):
        raise InvalidValue(_FIELD, value, f"must be a string, got {type(value).__name__}")
    if len(value) > 64:
        raise InvalidValue(_FIELD, value, "far too long for an ISRC")
    # NFKC folds fullwidth letters/digits; str.isdigit-style Unicode digits are then rejected by
    # the ASCII-only pattern below.
    text = unicodedata.normalize("NFKC", value).strip().upper()
    text = re.sub(r"[\s\-\u2010-\u2015]", "", text)
    if not ISRC_RE.match(text):
        raise InvalidValue(_FIELD, value, "not CC-XXX-YY-NNNNN (12 characters)")
    return text


def try_isrc(value: Any) -> str | None:
    """``normalise_isrc`` or None."""
    try:
        return normalise_isrc(value)
    except InvalidValue:
        return None
