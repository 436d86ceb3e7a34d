"""The request reply journal (migration 021, issue 20): a request answered is not asked again.

The answer journal (``pipeline.lookups.journal``) keeps a lookup's answer once the lookup is
complete. A lookup is often several requests (a search, then the release page; a batch request,
then each id's part), and one that fails part way (the detail request a 500 three times over) is
retried whole by its task, or is cut short by a killed worker: its answered requests used to be
asked, and paid for, again. Here each live reply the provider judged an answer (GET, 200 with
JSON, or 404) is written as it arrives (:meth:`MessageReplies.keep`, one autocommitted row,
``pipeline.lookups.journal_writes``), and the next delivery of the lookup (the task's retry,
a redelivery, a sweeper re-send) loads its jobs' replies with the lease (:func:`load`) and
answers those requests from them before the network (``HttpProvider._send`` asks the
:class:`~providers.exchange.ReplyJournal` in the context variable
``providers.exchange.reply_journal``, which :meth:`MessageReplies.asking` sets in each lookup
thread).

A reply belongs to its lookup (job, provider): a batch request, made for the whole message
before any one lookup, to the message's first job. The rows go when the lookup is recorded
(``journal.forget``, same transaction) or closed without recording (``journal.prune``).
Bodies and the request key's params are redacted at the HTTP edge, as every stored response.
What a killed worker had sent and not yet had answered is still asked again.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlencode

from sqlalchemy import text
from sqlalchemy.orm import Session

from db.bulk import to_jsonb
from pipeline.lookups.journal_writes import write_now
from pipeline.lookups.outcome import Ask, LookupInput
from providers._http import redact
from providers.contract import LookupResult
from providers.exchange import CannedReply, Reply, Request, reply_journal

__all__ = ["FORGET_SQL", "PRUNE_SQL", "MessageReplies", "key_of", "load"]

# Kept only while the lookup is pending (a lookup recorded meanwhile needs none); first wins.
_WRITE_SQL = """
    INSERT INTO enrichment_request_replies
        (job_id, provider, request_key, status_code, body, is_json)
    SELECT l.job_id, l.provider, %(key)s, %(status)s, %(body)s::jsonb, %(is_json)s
    FROM enrichment_lookups l
    WHERE l.job_id = %(job)s::uuid AND l.provider = %(provider)s AND l.status = 'pending'
    ON CONFLICT (job_id, provider, request_key) DO NOTHING
    """
_LOAD_SQL = text(
    """
    SELECT job_id::text, request_key, status_code, body, is_json
    FROM enrichment_request_replies
    WHERE provider = :provider AND job_id = ANY(CAST(:jobs AS uuid[]))
    """
)
#: The replies of (job, provider) pairs ``:jobs``/``:providers`` (``journal.forget``).
FORGET_SQL = text(
    """
    DELETE FROM enrichment_request_replies r
    USING unnest(CAST(:jobs AS uuid[]), CAST(:providers AS text[])) AS k(job_id, provider)
    WHERE r.job_id = k.job_id AND r.provider = k.provider
    """
)
#: The replies of lookups closed without being recorded (``journal.prune``).
PRUNE_SQL = text(
    """
    DELETE FROM enrichment_request_replies r USING enrichment_lookups l
    WHERE l.job_id = r.job_id AND l.provider = r.provider AND l.status <> 'pending'
    """
)

# The job whose lookup the current thread is asking (unset: a batch request of the message).
_job: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "songnodes_reply_job", default=None
)


def key_of(request: Request) -> str:
    """``METHOD url?sorted query`` with credentials redacted (an API key param is the same for
    every request of a provider, so redacting it keeps keys distinct)."""
    params = redact(dict(request.params or {}))
    query = urlencode(sorted((str(k), str(v)) for k, v in params.items()))
    return f"{request.method} {request.url}?{query}"


def load(
    session: Session, provider: str, job_ids: Sequence[str]
) -> dict[tuple[str, str], CannedReply]:
    """(job id, request key) -> the kept reply, for ``provider``'s lookups of ``job_ids``."""
    if not job_ids:
        return {}
    rows = session.execute(_LOAD_SQL, {"provider": provider, "jobs": list(job_ids)})
    return {
        (job, key): CannedReply(status, body, is_json) for job, key, status, body, is_json in rows
    }


@dataclass
class MessageReplies:
    """The reply journal of one lookup message: ``provider``'s kept replies of its jobs
    (``known``, from :func:`load`), and new answers written as they come.

    Implements :class:`providers.exchange.ReplyJournal`. ``first_job``: the owner of the
    message's batch requests."""

    provider: str
    first_job: str | None
    known: dict[tuple[str, str], CannedReply] = field(default_factory=dict)
    served: int = 0  # requests answered from the journal (not asked again)

    def _job(self) -> str | None:
        return _job.get() or self.first_job

    def find(self, request: Request) -> CannedReply | None:
        if not self.known:
            return None
        key = key_of(request)
        job = _job.get()
        if job is not None:
            kept = self.known.get((job, key))
        else:
            # A batch request: kept under the first job of the message that made it, which a
            # re-sent message (other grouping, other order) may not start with; any of this
            # message's jobs will do (the same request, of the same provider).
            kept = next((r for (_, k), r in self.known.items() if k == key), None)
        if kept is not None:
            self.served += 1
        return kept

    def keep(self, request: Request, reply: Reply) -> None:
        job = self._job()
        if job is None:
            return
        key = key_of(request)
        body = reply.raw.body  # redacted
        self.known[(job, key)] = CannedReply(reply.status_code, body, reply.is_json)
        params = {
            "job": job,
            "provider": self.provider,
            "key": key,
            "status": reply.status_code,
            "body": to_jsonb(body),
            "is_json": reply.is_json,
        }
        write_now(_WRITE_SQL, params, f"{self.provider}'s reply to {key} for job {job}")

    @contextlib.contextmanager
    def active(self) -> Iterator[MessageReplies]:
        """This journal answers the current thread's requests within the block (the message's
        batch requests, before its lookups run)."""
        token = reply_journal().set(self)
        try:
            yield self
        finally:
            reply_journal().reset(token)

    def asking(self, call: Ask) -> Ask:
        """``call`` for one lookup, with this journal and the lookup's job set in the thread that
        runs it (lookup threads do not inherit the caller's context)."""

        def ask(li: LookupInput) -> LookupResult:
            journal_token = reply_journal().set(self)
            job_token = _job.set(li.job_id)
            try:
                return call(li)
            finally:
                _job.reset(job_token)
                reply_journal().reset(journal_token)

        return ask
