"""Every parser raises only InvalidValue, whatever object it is handed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.normalise import (
    clean_text,
    normalise_genres,
    normalise_isrc,
    parse_bpm,
    parse_release_date,
    to_camelot,
    to_ms,
)
from pipeline.normalise.errors import InvalidValue

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=30),
    st.binary(max_size=8),
    st.sampled_from(
        ["'; DROP TABLE x; --", "\x00", "\u202e8A", "８Ａ", "C♯m", "B♭", "e\u0301", "🎧"]
    ),
)
objects = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner, inner),
        st.dictionaries(
            st.sampled_from(
                [
                    "key",
                    "mode",
                    "name",
                    "keyScale",
                    "key_key",
                    "key_scale",
                    "key_of",
                    "open_key",
                    "camelot_number",
                    "camelot_letter",
                    "x",
                ]
            ),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=6,
)

PARSERS: dict[str, Callable[[Any], object]] = {
    "to_camelot": to_camelot,
    "parse_bpm": parse_bpm,
    "normalise_isrc": normalise_isrc,
    "normalise_genres": normalise_genres,
    "parse_release_date": parse_release_date,
    "clean_text": clean_text,
    "to_ms(ms)": lambda v: to_ms(v, "ms"),
    "to_ms(clock)": lambda v: to_ms(v, "clock"),
    "to_ms(iso8601)": lambda v: to_ms(v, "iso8601"),
}


@pytest.mark.parametrize("name", sorted(PARSERS))
@given(value=objects)
def test_parsers_raise_only_invalid_value(name: str, value: object) -> None:
    """Arbitrary nested objects either parse or raise InvalidValue carrying a reason."""
    try:
        PARSERS[name](value)
    except InvalidValue as exc:
        assert exc.reason and exc.field


def test_invalid_value_message_is_bounded_and_picklable() -> None:
    """A huge hostile value does not end up whole in the message, and the error pickles."""
    import pickle

    with pytest.raises(InvalidValue) as info:
        parse_bpm("9" * 1_000_000)
    assert len(str(info.value)) < 300
    clone = pickle.loads(pickle.dumps(info.value))
    assert (clone.field, clone.reason) == (info.value.field, info.value.reason)
    assert isinstance(clone, ValueError)
