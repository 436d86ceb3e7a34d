"""to_jsonb: JSON text PostgreSQL's JSONB accepts, with a fast path when there is no NUL."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

from hypothesis import given
from hypothesis import strategies as st

from db.bulk import to_jsonb, without_nul

_text = st.text(alphabet=st.sampled_from(["a", "\x00", "\\", "u", "0", "é", "🎵", '"']))
_json = st.recursive(
    # (NaN and infinities: see the test below.)
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_text, children, max_size=4),
    max_leaves=12,
)


@given(_json)
def test_the_fast_path_writes_what_the_nul_walk_writes(value: object) -> None:
    """Whatever the value (NUL in keys or strings, a literal backslash-u0000, nesting), the
    result is what the full NUL rewrite gives, and decodes to text without any NUL."""
    got = to_jsonb(value)
    # Same JSON value (the encoder's spacing is not part of what JSONB stores).
    assert json.loads(got) == json.loads(json.dumps(without_nul(value), default=str))
    assert not any("\x00" in s for s in _strings(json.loads(got)))


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def test_a_nul_is_kept_visible_and_other_values_pass_untouched() -> None:
    assert json.loads(to_jsonb({"a\x00": ["x\x00y"]})) == {"a\\u0000": ["x\\u0000y"]}
    assert to_jsonb({"title": "Für Elise", "n": (1, 2)}) == '{"title":"Für Elise","n":[1,2]}'


def test_values_json_cannot_hold_are_written_the_way_the_standard_encoder_would() -> None:
    """Decimal, UUID and datetimes as their ``str``; NaN/inf (PostgreSQL refuses them) as null;
    what orjson refuses (a 70-bit integer, non-string keys) through the standard encoder."""
    when = datetime(2025, 10, 29, 12, 0, tzinfo=UTC)
    ident = UUID("12345678-1234-5678-1234-567812345678")
    got = json.loads(to_jsonb({"d": Decimal("0.10"), "u": ident, "t": when, "day": when.date()}))
    assert got == {"d": "0.10", "u": str(ident), "t": str(when), "day": "2025-10-29"}
    assert json.loads(to_jsonb([math.nan, math.inf, 1.5])) == [None, None, 1.5]
    assert json.loads(to_jsonb({"n": 2**70})) == {"n": 2**70}
    assert json.loads(to_jsonb({1: "one"})) == {"1": "one"}
