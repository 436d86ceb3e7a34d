"""Musical key parsing: every provider spelling to a Camelot code such as ``8A``.

Accepted spellings (see docs/CONTRACTS.md and /work/shared/reference/providers.md):

* Camelot: ``8A``, ``08a``, `` 8 a `` (letter A = minor, B = major).
* Open Key: ``1m`` (= 8A), ``1d`` (= 8B); open number = ((camelot - 8) mod 12) + 1.
* Note names: ``A minor``, ``Am``, ``A min``, ``C# Major``, ``Db major``, ``F♯ minor``, ``B♭``,
  ``FSharp`` (Tidal), ``C♯m`` (GetSongBPM); a bare note means major. Enharmonic spellings such
  as ``E#``, ``Fb``, ``Cb`` and ``B#`` resolve through the pitch class.
* Spotify pitch class + mode: ``(9, 0)`` or ``from_pitch_class(9, 0)``; ``-1`` means unknown.
* Dicts: Beatport's key object (``camelot_number``/``camelot_letter``, falling back to
  ``name``), Tidal ``key``/``keyScale``, Spotify ``key``/``mode``, GetSongBPM
  ``key_of``/``open_key``, AcousticBrainz ``key_key``/``key_scale``. When a dict carries two
  spellings they must agree, otherwise the payload is inconsistent and we refuse to pick one.

German ``H`` and any other unknown spelling raise ``InvalidValue``: a wrong key is worse than no
key for harmonic mixing, so nothing here guesses.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from pipeline.normalise.errors import InvalidValue

__all__ = [
    "ALL_KEYS",
    "camelot_to_open_key",
    "camelot_to_pitch_class",
    "from_pitch_class",
    "key_name",
    "to_camelot",
    "try_camelot",
]

_FIELD = "key"
_MAX_LEN = 64  # longest sane spelling is "F sharp minor"-ish; longer is garbage, not a key

# The 24 Camelot codes in wheel order: 1A..12A then 1B..12B.
ALL_KEYS: tuple[str, ...] = tuple(f"{n}{letter}" for letter in "AB" for n in range(1, 13))

_NOTE_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
# Display names, sharps for the minor side and the usual DJ-software spellings for majors.
_MINOR_NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
_MAJOR_NAMES = ["C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]

_CAMELOT_RE = re.compile(r"^0?(1[0-2]|[1-9])\s*([ab])$", re.IGNORECASE)
_OPEN_KEY_RE = re.compile(r"^0?(1[0-2]|[1-9])\s*([md])$", re.IGNORECASE)
# Note letter, optional accidental(s), optional mode. The accidental "b" is only a flat when it
# follows the note letter directly or after a space ("Bb", "E b"), never as a mode.
_NOTE_RE = re.compile(
    r"""^(?P<note>[A-Ga-g])
        [\s_-]*
        (?P<acc>\#\#|\#|♯|♭|bb|b|sharp|flat|is|es|s)?
        [\s_-]*
        (?P<mode>major|minor|maj|min|m|dur|moll)?
        \.?$""",
    re.IGNORECASE | re.VERBOSE,
)
_ACC_SHIFT = {"#": 1, "♯": 1, "sharp": 1, "##": 2, "b": -1, "♭": -1, "flat": -1, "bb": -2}


def _fail(value: Any, reason: str) -> InvalidValue:
    return InvalidValue(_FIELD, value, reason)


def _camelot_from_pc(pitch_class: int, minor: bool) -> str:
    # Each Camelot step is a perfect fifth (7 semitones); 7 is its own inverse mod 12, so
    # multiplying the semitone offset by 7 gives the number of steps from the anchor key.
    if minor:
        steps = ((pitch_class - 9) * 7) % 12  # A minor = 8A
        return f"{(7 + steps) % 12 + 1}A"
    steps = (pitch_class * 7) % 12  # C major = 8B
    return f"{(7 + steps) % 12 + 1}B"


def camelot_to_pitch_class(code: str) -> tuple[int, int]:
    """Spotify-style ``(pitch_class, mode)`` for a Camelot code (mode 0 minor, 1 major)."""
    camelot = to_camelot(code)
    number, letter = int(camelot[:-1]), camelot[-1]
    steps = (number - 8) % 12
    if letter == "A":
        return (9 + steps * 7) % 12, 0
    return (steps * 7) % 12, 1


def key_name(code: str) -> str:
    """Readable name such as ``"A minor"`` or ``"Db major"`` for any key spelling."""
    pitch_class, mode = camelot_to_pitch_class(code)
    if mode == 0:
        return f"{_MINOR_NAMES[pitch_class]} minor"
    return f"{_MAJOR_NAMES[pitch_class]} major"


def camelot_to_open_key(code: str) -> str:
    """Open Key notation (``1m``/``1d``) for any key spelling."""
    camelot = to_camelot(code)
    number, letter = int(camelot[:-1]), camelot[-1]
    return f"{(number - 8) % 12 + 1}{'m' if letter == 'A' else 'd'}"


def from_pitch_class(key: int, mode: int) -> str | None:
    """Spotify audio-features ``key`` (0..11, -1 unknown) and ``mode`` (0 minor, 1 major)."""
    for name, item in (("pitch class", key), ("mode", mode)):
        if isinstance(item, bool) or not isinstance(item, int):
            raise _fail((key, mode), f"{name} must be an int, got {type(item).__name__}")
    if key == -1:
        return None
    if not 0 <= key <= 11:
        raise _fail((key, mode), "pitch class must be in 0..11 (or -1 for unknown)")
    if mode not in (0, 1):
        raise _fail((key, mode), "mode must be 0 (minor) or 1 (major)")
    return _camelot_from_pc(key, minor=mode == 0)


def _prepare(value: str) -> str:
    if "\x00" in value:
        raise _fail(value, "contains NUL")
    if len(value) > _MAX_LEN:
        raise _fail(value, f"longer than {_MAX_LEN} characters")
    # NFKC folds fullwidth digits/letters; it leaves ♯/♭ alone, which the regex handles.
    text = unicodedata.normalize("NFKC", value).strip()
    return text.replace("\u266e", "")  # a natural sign changes nothing


def _parse_note(text: str, original: Any, scale: str | None = None) -> str:
    match = _NOTE_RE.match(text)
    if match is None:
        raise _fail(original, "not a recognised key spelling")
    note = match["note"].upper()
    acc = (match["acc"] or "").lower()
    mode_raw = match["mode"]
    if acc in ("is", "es", "s"):
        # German/Tidal-style suffixes are ambiguous ("As", "Es"); Tidal's "Sharp" is handled
        # above, so only accept these when the letters make an unambiguous sharp/flat.
        raise _fail(original, "ambiguous accidental spelling")
    pitch_class = (_NOTE_PC[note] + _ACC_SHIFT.get(acc, 0)) % 12
    if mode_raw is None:
        minor = False if scale is None else _parse_scale(scale, original)
    else:
        mode = mode_raw.lower()
        if mode in ("dur", "moll"):
            raise _fail(original, "German key notation is not supported")
        if mode_raw == "M":
            # "CM" is major in some tools and a typo for minor in others: refuse to guess.
            raise _fail(original, "ambiguous mode 'M'")
        minor = mode in ("minor", "min", "m")
        if scale is not None and _parse_scale(scale, original) != minor:
            raise _fail(original, "key name and scale disagree")
    return _camelot_from_pc(pitch_class, minor)


def _parse_scale(scale: Any, original: Any) -> bool:
    """True for minor, False for major; anything else (modes, UNKNOWN) is invalid."""
    if not isinstance(scale, str):
        raise _fail(original, f"scale must be a string, got {type(scale).__name__}")
    word = scale.strip().lower()
    if word in ("minor", "min", "m"):
        return True
    if word in ("major", "maj"):
        return False
    raise _fail(original, f"unsupported scale {scale[:20]!r}")


def _parse_str(value: str, original: Any) -> str:
    text = _prepare(value)
    if not text:
        raise _fail(original, "empty")
    if match := _CAMELOT_RE.match(text):
        return f"{int(match[1])}{match[2].upper()}"
    if match := _OPEN_KEY_RE.match(text):
        open_number = int(match[1])
        camelot_number = (open_number + 6) % 12 + 1
        return f"{camelot_number}{'A' if match[2].lower() == 'm' else 'B'}"
    return _parse_note(text, original)


def _agree(first: str, second: str, original: Any) -> str:
    if first != second:
        raise _fail(original, f"inconsistent key fields ({first} vs {second})")
    return first


def _parse_mapping(value: Mapping[Any, Any]) -> str:
    if "camelot_number" in value or "camelot_letter" in value:  # Beatport
        number, letter = value.get("camelot_number"), value.get("camelot_letter")
        if isinstance(number, bool) or not isinstance(number, int | str):
            raise _fail(value, "camelot_number must be an int")
        if not isinstance(letter, str):
            raise _fail(value, "camelot_letter must be a string")
        code = _parse_str(f"{number}{letter}", value)
        if not _CAMELOT_RE.match(f"{number}{letter}".strip()):
            raise _fail(value, "camelot fields are not a Camelot code")
        name = value.get("name")
        if isinstance(name, str) and name.strip():
            return _agree(code, _parse_str(name, value), value)
        return code
    if "key_key" in value:  # AcousticBrainz
        note = value.get("key_key")
        if not isinstance(note, str):
            raise _fail(value, "key_key must be a string")
        scale = value.get("key_scale")
        if not isinstance(scale, str):  # no scale means unknown mode, not major
            raise _fail(value, "key_scale missing")
        return _parse_note(_prepare(note), value, scale=scale)
    if "key_of" in value or "open_key" in value:  # GetSongBPM
        found = [
            _parse_str(item, value)
            for item in (value.get("key_of"), value.get("open_key"))
            if isinstance(item, str) and item.strip()
        ]
        if not found:
            raise _fail(value, "no usable key_of/open_key")
        return _agree(found[0], found[-1], value)
    if "name" in value and "key" not in value:  # Beatport key object without camelot fields
        name = value["name"]
        if not isinstance(name, str):
            raise _fail(value, "name must be a string")
        return _parse_str(name, value)
    if "key" in value:
        key = value["key"]
        if "mode" in value:  # Spotify audio features
            spotify = from_pitch_class(key, value["mode"])
            if spotify is None:
                raise _fail(value, "unknown key (-1)")
            return spotify
        if isinstance(key, str):  # Tidal: key + keyScale
            scale = value.get("keyScale", value.get("key_scale"))
            return _parse_note(_prepare(key), value, scale=scale)
    raise _fail(value, "unrecognised key object")


def to_camelot(value: Any) -> str:
    """Canonical Camelot code for any supported spelling; raises ``InvalidValue`` otherwise."""
    if isinstance(value, str):
        return _parse_str(value, value)
    if isinstance(value, Mapping):
        return _parse_mapping(value)
    if isinstance(value, tuple | list) and len(value) == 2:
        first, second = value
        if isinstance(first, str) and isinstance(second, str):  # ("FSharp", "MAJOR")
            return _parse_note(_prepare(first), value, scale=second)
        code = from_pitch_class(first, second)
        if code is None:
            raise _fail(value, "unknown key (-1)")
        return code
    raise _fail(value, f"unsupported type {type(value).__name__}")


def try_camelot(value: Any) -> str | None:
    """Like ``to_camelot`` but returns None instead of raising."""
    try:
        return to_camelot(value)
    except InvalidValue:
        return None
