"""The lookup answer journal (migration 018, issue 20): an answer received is not asked again.

A lookup message asks its provider about up to 40 jobs and records them together at the end.
Each answer is written here as soon as it arrives (:func:`journal_answer`, its own short
transaction, from the lookup thread), so a worker killed mid-message loses nothing it was
told: when the lookups are leased again (redelivery, sweeper re-send), :func:`journaled`
rebuilds their outcomes and the engine records them without asking. ``record_outcomes``
deletes the rows it records, in its own transaction (:func:`forget`).

Only answers worth keeping are journaled: a provider's result, or a failure that will not be
retried (what would be recorded). Stored replay and scraper lookups (database reads, free) and
circuit-open skips (nothing asked) are not. Responses were redacted at the HTTP edge
(``providers._http.redact``), as for ``bronze_api_enrichments``; nothing here un-redacts them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from db.bulk import to_jsonb
from pipeline.lookups import replies
from pipeline.lookups.journal_writes import write_now
from pipeline.lookups.outcome import LookupInput, LookupOutcome
from pipeline.scraper_providers import SCRAPER_PROVIDERS
from providers.contract import FieldValue, LookupResult, RawResponse

__all__ = [
    "decode",
    "encode",
    "forget",
    "is_database_read",
    "journal_answer",
    "journaled",
    "prune",
    "worth_journaling",
]

# The answer is kept only while its lookup is pending: a lookup recorded meanwhile (by another
# delivery) needs no journal row. First answer wins, as in record_outcomes. (psycopg's own
# placeholders: it runs on the driver connection, see pipeline.lookups.journal_writes.)
_WRITE_SQL = """
    INSERT INTO enrichment_lookup_answers (job_id, provider, answer, holder)
    SELECT l.job_id, l.provider, %(answer)s::jsonb, %(holder)s FROM enrichment_lookups l
    WHERE l.job_id = %(job)s::uuid AND l.provider = %(provider)s AND l.status = 'pending'
    ON CONFLICT (job_id, provider) DO NOTHING
    """
_READ_SQL = text(
    """
    SELECT a.job_id::text AS job_id, a.provider, a.answer
    FROM unnest(CAST(:jobs AS uuid[]), CAST(:providers AS text[])) AS k(job_id, provider)
    JOIN enrichment_lookup_answers a ON a.job_id = k.job_id AND a.provider = k.provider
    """
)
_FORGET_SQL = text(
    """
    DELETE FROM enrichment_lookup_answers a
    USING unnest(CAST(:jobs AS uuid[]), CAST(:providers AS text[])) AS k(job_id, provider)
    WHERE a.job_id = k.job_id AND a.provider = k.provider
    """
)


def is_database_read(li: LookupInput) -> bool:
    """A lookup answered from our own database (stored replay, a scraper provider): free."""
    return li.replay_mode == "stored" or li.provider in SCRAPER_PROVIDERS


def worth_journaling(outcome: LookupOutcome) -> bool:
    """A live answer (or final failure) of an HTTP provider; not a free or unasked one."""
    return outcome.status != "skipped" and not is_database_read(outcome.li)


def _response(r: RawResponse) -> dict[str, Any]:
    return {
        "endpoint": r.endpoint,
        "params": dict(r.params),
        "status_code": r.status_code,
        "body": r.body,
        "elapsed_ms": r.elapsed_ms,
        "api_version": r.api_version,
        "calls": r.calls,
    }


def encode(outcome: LookupOutcome) -> str:
    """The outcome (without its input, which the lease re-reads) as JSON text for JSONB."""
    r = outcome.result
    result = None
    if r is not None:
        result = {
            "provider": r.provider,
            "status": r.status,
            "values": {k: [v.field, v.value, v.confidence, v.raw] for k, v in r.values.items()},
            "match_confidence": r.match_confidence,
            "responses": [_response(x) for x in r.responses],
            "rejected": r.rejected,
            "unavailable": r.unavailable,
            "replaced_id": r.replaced_id,
        }
    return to_jsonb(
        {
            "result": result,
            "latency_ms": outcome.latency_ms,
            "error": outcome.error,
            "status": outcome.status,
            "responses": [_response(x) for x in outcome.responses],
        }
    )


def _raw(d: Mapping[str, Any]) -> RawResponse:
    return RawResponse(
        d["endpoint"], d["params"], d["status_code"], d["body"], d["elapsed_ms"],
        d["api_version"], d["calls"],
    )  # fmt: skip


def decode(li: LookupInput, doc: Mapping[str, Any]) -> LookupOutcome:
    """The outcome :func:`encode` wrote, for ``li``."""
    r = doc["result"]
    result = None
    if r is not None:
        result = LookupResult(
            provider=r["provider"],
            status=r["status"],
            values={k: FieldValue(*v) for k, v in r["values"].items()},
            match_confidence=r["match_confidence"],
            responses=[_raw(x) for x in r["responses"]],
            rejected=r["rejected"],
            unavailable=r["unavailable"],
            replaced_id=r["replaced_id"],
        )
    return LookupOutcome(
        li,
        result=result,
        latency_ms=doc["latency_ms"],
        error=doc["error"],
        status=doc["status"],
        responses=[_raw(x) for x in doc["responses"]],
    )


def journal_answer(outcome: LookupOutcome, holder: str) -> bool:
    """Write ``outcome`` at once, one autocommitted statement; False when it could not be
    written (logged: the answer is still recorded with its batch, only a kill would lose it).

    ``synchronous_commit = off``: the row guards against a killed *worker* (PostgreSQL keeps
    what it committed, whenever the WAL reaches the disk), not against a PostgreSQL crash, which
    may lose the last few hundred ms of journal rows: at most those lookups are asked again,
    as before the journal. Not waiting for the WAL flush keeps the write off the lookup's path.
    """
    li = outcome.li
    params = {"answer": encode(outcome), "holder": holder, "job": li.job_id,
              "provider": li.provider}  # fmt: skip
    return write_now(_WRITE_SQL, params, f"{li.provider}'s answer for job {li.job_id}")


def journaled(
    session: Session, inputs: Sequence[LookupInput]
) -> dict[tuple[str, str], LookupOutcome]:
    """(job id, provider) -> the journaled outcome of each input that has one (one query; none
    when every input is a database read, which is never journaled)."""
    inputs = [li for li in inputs if not is_database_read(li)]
    if not inputs:
        return {}
    by_key = {(li.job_id, li.provider): li for li in inputs}
    rows = session.execute(
        _READ_SQL,
        {"jobs": [li.job_id for li in inputs], "providers": [li.provider for li in inputs]},
    )
    return {(job, p): decode(by_key[(job, p)], answer) for job, p, answer in rows}


def forget(session: Session, keys: Sequence[tuple[str, str]]) -> None:
    """Delete the journal rows of (job id, provider) ``keys`` (recorded in this transaction),
    their answers and their requests' replies (``pipeline.lookups.replies``)."""
    if keys:
        params = {"jobs": [k[0] for k in keys], "providers": [k[1] for k in keys]}
        session.execute(_FORGET_SQL, params)
        session.execute(replies.FORGET_SQL, params)


_PRUNE_SQL = text(
    """
    DELETE FROM enrichment_lookup_answers a USING enrichment_lookups l
    WHERE l.job_id = a.job_id AND l.provider = a.provider AND l.status <> 'pending'
    """
)


def prune(session: Session) -> int:
    """Delete journal rows (answers and request replies) of lookups closed without
    ``record_outcomes`` (a job the reaper failed); the sweeper calls it. Returns how many
    went."""
    answers = session.execute(_PRUNE_SQL).rowcount  # type: ignore[attr-defined]
    return int(answers or 0) + int(session.execute(replies.PRUNE_SQL).rowcount or 0)  # type: ignore[attr-defined]
