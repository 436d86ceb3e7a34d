"""``HttpProvider`` and a reply journal (``providers.exchange.ReplyJournal``, issue 20).

A lookup retried or redelivered part way must not ask its answered requests again: with a
journal in the context variable, a live GET is looked up there first, and a live reply the
provider judged an answer (200 with JSON, 404) is kept. The journal here is an in-memory one
(the contract only; the PostgreSQL one, ``pipeline.lookups.replies``, is tested in
``tests/db/test_lookup_journal.py``). Bodies are Discogs' documented search and release shapes
(the fixtures of ``test_real_bodies``: Justice's "†", Ed Banger Records, 2007), served by respx.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import respx

from pipeline.lookups.replies import key_of
from pipeline.matching import TrackQuery
from providers.errors import NotFound, TransientError
from providers.exchange import CannedReply, Reply, Request, reply_journal

from .conftest import ProviderFactory
from .test_real_bodies import BASE, CROSS_ITEM, CROSS_RELEASE, ENV

FIELDS = ["discogs_id", "label", "artist_name"]
QUERY = TrackQuery("Justice", "Phantom Pt. II")
SEARCH = {"pagination": {"page": 1, "pages": 1, "items": 1}, "results": [CROSS_ITEM]}


class MemoryJournal:
    """Keeps what it is given, answers what it kept (counts both)."""

    def __init__(self) -> None:
        self.kept: dict[str, CannedReply] = {}
        self.found: list[str] = []

    def find(self, request: Request) -> CannedReply | None:
        reply = self.kept.get(key_of(request))
        if reply is not None:
            self.found.append(key_of(request))
        return reply

    def keep(self, request: Request, reply: Reply) -> None:
        self.kept[key_of(request)] = CannedReply(reply.status_code, reply.raw.body, reply.is_json)


@pytest.fixture
def journal() -> Iterator[MemoryJournal]:
    j = MemoryJournal()
    token = reply_journal().set(j)
    yield j
    reply_journal().reset(token)


@respx.mock
def test_a_lookup_retried_after_a_failed_release_read_does_not_search_again(
    make_provider: ProviderFactory, journal: MemoryJournal
) -> None:
    """The search is answered, the release read fails (HTTP 500 on every in-call attempt):
    the lookup fails transiently and only the search is kept. Retried, the search comes from
    the journal (respx sees one search in all) and only the release is asked again; the result
    is the one a lookup without failures gives."""
    search = respx.get(f"{BASE}/discogs/database/search").respond(json=SEARCH)
    release = respx.get(f"{BASE}/discogs/releases/1049934").respond(500)
    provider = make_provider("discogs", ENV)
    with pytest.raises(TransientError):
        provider.lookup(QUERY, FIELDS)
    assert search.call_count == 1 and release.call_count >= 2  # in-call retries of the 500
    assert [k.split("?")[0] for k in journal.kept] == [f"GET {BASE}/discogs/database/search"]

    release.respond(json=CROSS_RELEASE)
    result = provider.lookup(QUERY, FIELDS)
    assert search.call_count == 1, "the answered search was asked again"
    assert journal.found == [next(iter(journal.kept))]
    assert result.status == "found" and result.values["discogs_id"].value == "1049934"
    assert result.values["label"].value == "Ed Banger Records"
    # The journaled search still stands for one request in the lookup's responses.
    assert [r.calls for r in result.responses] == [1, 1]
    assert result.responses[0].status_code == 200 and result.responses[0].body == SEARCH


@respx.mock
def test_a_404_is_an_answer_and_is_kept(
    make_provider: ProviderFactory, journal: MemoryJournal
) -> None:
    """A stale release id answered 404 (Discogs' ``{"message": "Release not found."}``) is
    kept: asked again, the 404 comes from the journal, not the network."""
    gone = respx.get(f"{BASE}/discogs/releases/999").respond(
        404, json={"message": "Release not found."}
    )
    provider = make_provider("discogs", ENV)
    for _ in range(2):
        with pytest.raises(NotFound):
            provider.lookup_by_id("999")
    assert gone.call_count == 1
    assert [r.status_code for r in journal.kept.values()] == [404]


@respx.mock
def test_what_is_not_an_answer_is_not_kept(
    make_provider: ProviderFactory, journal: MemoryJournal
) -> None:
    """A truncated JSON body with HTTP 200 (the provider calls it malformed) and a 429 are
    not answers: nothing is kept, and the next attempt goes to the network."""
    route = respx.get(f"{BASE}/discogs/database/search").respond(200, text='{"results": [')
    provider = make_provider("discogs", ENV)
    with pytest.raises(Exception):  # noqa: B017 - MalformedResponse or its retry wrapper
        provider.lookup(QUERY, FIELDS)
    route.respond(429, headers={"Retry-After": "0"})
    with pytest.raises(Exception):  # noqa: B017 - RateLimited after the in-call budget
        provider.lookup(QUERY, FIELDS)
    assert journal.kept == {}


@respx.mock
def test_secrets_stay_out_of_the_request_key(make_provider: ProviderFactory) -> None:
    """The key is the request as stored: a Last.fm ``api_key`` param is redacted in it."""
    provider = make_provider("lastfm", {**ENV, "SONGNODES_LASTFM_API_KEY": "s3cret-key-123"})
    request = Request(
        "lastfm", None, "GET", provider.url("/"),
        {"method": "track.getInfo", "api_key": "s3cret-key-123", "artist": "A", "track": "T"},
    )  # fmt: skip
    key = key_of(request)
    assert "s3cret" not in key and "api_key=%2A%2A%2A" in key
    assert key.startswith(f"GET {provider.url('/')}?")


def test_without_a_journal_nothing_changes(make_provider: ProviderFactory) -> None:
    """No journal in the context (replay, what-if, the CLI outside a lookup task): every
    request goes to the network as before."""
    assert reply_journal().get() is None
    with respx.mock:
        search = respx.get(f"{BASE}/discogs/database/search").respond(json=SEARCH)
        respx.get(f"{BASE}/discogs/releases/1049934").respond(json=CROSS_RELEASE)
        provider = make_provider("discogs", ENV)
        provider.lookup(QUERY, FIELDS)
        provider.lookup(QUERY, FIELDS)
    assert search.call_count == 2


def test_a_batch_reply_is_found_whichever_job_of_the_message_kept_it() -> None:
    """A batch request (AcousticBrainz ``low-level?recording_ids=a;b``) is kept under the first
    job of the message that made it; the sweeper re-sends those lookups in another grouping and
    order, so the re-sent message may start with another job (a chaos run asked one batch twice
    this way). Found by request among the message's jobs; a lookup's own request stays its
    job's."""
    from pipeline.lookups.outcome import LookupInput
    from pipeline.lookups.replies import MessageReplies

    batch = Request("acousticbrainz", None, "GET", f"{BASE}/acousticbrainz/low-level",
                    {"recording_ids": "a;b"})  # fmt: skip
    own = Request("acousticbrainz", None, "GET", f"{BASE}/acousticbrainz/high-level",
                  {"recording_ids": "b"})  # fmt: skip
    reply = CannedReply(200, {"a": {"0": {}}, "b": {"0": {}}})
    kept = MessageReplies(
        "acousticbrainz", "job-a", {("job-b", key_of(batch)): reply, ("job-b", key_of(own)): reply}
    )
    assert kept.find(batch) is reply  # no lookup's job in this thread: a batch request
    asked: dict[str, CannedReply | None] = {}

    def lookup(li: LookupInput) -> Any:
        asked[li.job_id] = kept.find(own)
        return None

    for job in ("job-a", "job-b"):
        kept.asking(lookup)(LookupInput(job, "run", "bronze", "acousticbrainz", ["bpm"],
                                        QUERY, None, None))  # type: ignore[arg-type]  # fmt: skip
    assert asked == {"job-a": None, "job-b": reply}
