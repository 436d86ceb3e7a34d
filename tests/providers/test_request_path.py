"""The per-request path: the retry fast path keeps tenacity's semantics, redaction is unchanged."""

from __future__ import annotations

import time
import types
from collections.abc import Mapping
from typing import Any

import httpx
import pytest
import respx
from hypothesis import given
from hypothesis import strategies as st

from providers._http import REDACTED, SECRET_NAMES, redact
from providers.base import HttpProvider, RetryPolicy
from providers.errors import TransientError

from .conftest import ProviderFactory
from .test_wire_errors import DEEZER_TRACK, ENV, Q

BASE = "http://fake.test"
ISRC_URL = f"{BASE}/deezer/track/isrc:GBDUW0000059"
# Retries that would fit the budget on their own (1 ms waits) but not after a slow first attempt.
TIGHT = RetryPolicy(
    attempts=3, max_total_wait_s=0.05, backoff_initial_s=0.001, backoff_max_s=0.001, jitter_s=0
)


@respx.mock
def test_successful_request_never_builds_a_retry_controller(
    make_provider: ProviderFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request that succeeds at once does not go through tenacity at all."""

    def no_retrying(self: HttpProvider) -> Any:
        raise AssertionError("tenacity used for a request that did not fail")

    monkeypatch.setattr(HttpProvider, "_retrying", no_retrying)
    respx.get(ISRC_URL).respond(json=DEEZER_TRACK)
    result = make_provider("deezer", ENV).lookup(Q, ["bpm"])
    assert result.values["bpm"].value == 123.0


@respx.mock
def test_first_failure_is_tenacity_attempt_one(make_provider: ProviderFactory) -> None:
    """After a fast-path failure, tenacity counts it: attempts=3 means two more tries."""
    route = respx.get(ISRC_URL).mock(
        side_effect=[
            httpx.Response(500),
            httpx.Response(500),
            httpx.Response(200, json=DEEZER_TRACK),
        ]
    )
    sleeps: list[float] = []
    provider = make_provider("deezer", ENV, sleeps=sleeps)
    provider.retry = TIGHT
    result = provider.lookup(Q, ["bpm"])
    assert result.values["bpm"].value == 123.0
    assert route.call_count == 3 and sleeps == [0.001, 0.001]
    assert [r.status_code for r in result.responses] == [500, 500, 200]


@respx.mock
def test_first_attempt_time_counts_against_the_retry_budget(make_provider: ProviderFactory) -> None:
    """A first attempt that used up max_total_wait_s is not retried, as when tenacity ran it."""

    def slow_500(request: httpx.Request) -> httpx.Response:
        time.sleep(0.06)
        return httpx.Response(500)

    route = respx.get(ISRC_URL).mock(side_effect=slow_500)
    sleeps: list[float] = []
    provider = make_provider("deezer", ENV, sleeps=sleeps)
    provider.retry = TIGHT
    with pytest.raises(TransientError, match="HTTP 500"):
        provider.lookup(Q, ["bpm"])
    assert route.call_count == 1 and sleeps == []


@respx.mock
def test_single_attempt_policy_raises_the_first_failure(make_provider: ProviderFactory) -> None:
    """attempts=1 (stored replay): the first retryable failure is raised as it is."""
    route = respx.get(ISRC_URL).respond(503)
    provider = make_provider("deezer", ENV)
    provider.retry = RetryPolicy(attempts=1)
    with pytest.raises(TransientError, match="HTTP 503"):
        provider.lookup(Q, ["bpm"])
    assert route.call_count == 1


def _redact_reference(value: Any) -> Any:
    """``redact`` as first written (recursive isinstance checks), the behaviour to keep."""
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if str(k).lower() in SECRET_NAMES else _redact_reference(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redact_reference(v) for v in value]
    return value


_keys = st.sampled_from([*sorted(SECRET_NAMES), "Access_Token", "API_KEY", "key", "name", "id"])
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(_keys | st.text(max_size=6) | st.integers(), inner, max_size=4)
        | st.dictionaries(_keys, inner, max_size=3).map(types.MappingProxyType)
    ),
    max_leaves=30,
)


@given(_json)
def test_redact_equals_the_reference(value: Any) -> None:
    """Secret keys (any case) are replaced at every depth; everything else is copied as before."""
    assert redact(value) == _redact_reference(value)
