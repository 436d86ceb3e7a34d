"""The sandbox counts a question answered twice (the chaos harness's "asked twice", issue 20).

A provider is asked twice when the same GET (path and query) is answered 200 or 404 more than
once; an injected 500 is no answer, so a retry after it is not counted. Order of the query
parameters does not matter (the key sorts them).
"""

from __future__ import annotations

import httpx

from providers.sandbox import SandboxHandle


def _deezer(sandbox: SandboxHandle) -> dict[str, int]:
    return sandbox.stats().get("deezer", {})


def test_the_same_question_answered_twice_is_counted(sandbox: SandboxHandle) -> None:
    sandbox.state.stats.forget_answers()
    url = f"{sandbox.base_url}/deezer/search/track"
    before = _deezer(sandbox)
    with httpx.Client(timeout=5) as http:
        assert http.get(url, params={"q": 'artist:"A" track:"B"', "limit": 5}).status_code == 200
        assert http.get(url, params={"limit": 5, "q": 'artist:"A" track:"B"'}).status_code == 200
        assert http.get(url, params={"q": 'artist:"C" track:"D"', "limit": 5}).status_code == 200
        sandbox.configure("deezer", errors={"500": 1.0})
        try:
            assert http.get(url, params={"q": 'artist:"E" track:"F"'}).status_code == 500
        finally:
            sandbox.configure("deezer", errors={})
        assert http.get(url, params={"q": 'artist:"E" track:"F"'}).status_code == 200
    after = _deezer(sandbox)
    assert after["answered"] - before.get("answered", 0) == 4  # the 500 is no answer
    assert after["answered_again"] == 1  # only A/B, asked twice in another parameter order
    sandbox.state.stats.forget_answers()
    assert _deezer(sandbox)["answered_again"] == 0
