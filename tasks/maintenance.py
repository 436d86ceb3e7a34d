"""Beat-scheduled maintenance tasks (schedule in ``celeryconfig.beat_schedule``).

The sweeper (issue 20) re-derives every hand-off a lost message carried from PostgreSQL
(``pipeline.maintenance.find_stalled_work`` and ``pipeline.recovery``): lookups, merges, setlist
merges, gold updates, owed artist aggregates and track appearances, view refreshes, replay
chunks, artists, and transient failed work. It runs every ``SONGNODES_SWEEP_INTERVAL_S``
(default 60 s), never twice at once (an advisory lock the reaper takes too), and at once when a
worker reconnects to the broker
(``SweepOnConnect``): after a broker restart that lost its messages, the queues are empty and
everything still owed is sent again without waiting for the age threshold.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from celery.utils.log import get_task_logger
from sqlalchemy import text

from celeryconfig import (
    SWEEP_INTERVAL_S,  # how often beat sends the sweep
    queue_for_broker,
)
from db.engine import session_scope
from pipeline import maintenance, recovery
from pipeline.enrich import Next, create_jobs
from pipeline.lookups import journal
from pipeline.merge import artist_to_silver
from pipeline.runs import start_run
from tasks import broker_mark
from tasks.app import app
from tasks.base import publish_countdown
from tasks.dispatch import dispatch, queue_for

__all__ = [
    "REAP_AFTER_S",
    "REAP_GIVE_UP_S",
    "SWEEP_AFTER_S",
    "SWEEP_INTERVAL_S",
    "check_provider_health",
    "compute_data_quality_metrics",
    "queue_backlogs",
    "reap_stuck_runs",
    "rerun_failed_work",
    "rollup_provider_performance",
    "sweep_stalled",
]

log = get_task_logger(__name__)

#: Work untouched this long is presumed lost (a reconnect sweep uses 0: see the module doc).
SWEEP_AFTER_S = int(os.environ.get("SONGNODES_SWEEP_AFTER_S", "90"))
#: Setlists and artists that arrived this long ago at most are checked by the sweep.
SWEEP_LOOKBACK_S = int(os.environ.get("SONGNODES_SWEEP_LOOKBACK_S", str(7 * 86400)))
#: Reconnect sweeps closer together than this (every worker reconnects at once) run once.
RECONNECT_DEBOUNCE_S = float(os.environ.get("SONGNODES_RECONNECT_SWEEP_DEBOUNCE_S", "10"))
#: A transient failed_work row is re-run at most this many times by the sweeper.
MAX_RERUNS = int(os.environ.get("SONGNODES_FAILED_WORK_MAX_RERUNS", "10"))
#: Runs open this long have ALL their open work re-sent by the reaper (whatever its age). Never
#: less than ten sweeps: the reaper must not act on work a sweep has not yet had a chance at.
REAP_AFTER_S = max(
    int(os.environ.get("SONGNODES_REAP_AFTER_S", str(6 * 3600))),
    int(10 * (SWEEP_INTERVAL_S + SWEEP_AFTER_S)),
)
#: Only runs open this long are closed with their open jobs failed (the last resort).
REAP_GIVE_UP_S = max(
    int(os.environ.get("SONGNODES_REAP_GIVE_UP_S", str(7 * 86400))), 2 * REAP_AFTER_S
)


def _date(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


@app.task(name="tasks.maintenance.rollup_provider_performance", keep_failed=False)
def rollup_provider_performance(day: str | None = None) -> int:
    """Nightly: yesterday's provider x field performance (idempotent upsert)."""
    with session_scope() as session:
        return maintenance.rollup_providers(session, _date(day))


@app.task(name="tasks.maintenance.compute_data_quality_metrics", keep_failed=False)
def compute_data_quality_metrics(day: str | None = None) -> None:
    """Daily: one quality row per layer (idempotent upsert)."""
    with session_scope() as session:
        maintenance.record_quality_metrics(session, _date(day))


@app.task(name="tasks.maintenance.check_provider_health", keep_failed=False, max_retries=2)
def check_provider_health() -> dict[str, str]:
    """Copy every provider's circuit-breaker state into ``enrichment_providers``."""
    from pipeline.lookups.clients import HEALTH_BY_STATE, provider_client
    from providers.registry import available_providers

    states: dict[str, str] = {}
    for name in available_providers():
        breaker = getattr(provider_client(name), "breaker", None)
        if breaker is None:
            continue
        # ``state`` is a property (it read ``breaker.state()`` once: a TypeError every run).
        state = breaker.state
        states[name] = HEALTH_BY_STATE.get(str(getattr(state, "value", state)), "degraded")
    with session_scope() as session:
        maintenance.update_provider_health(session, states)
    return states


def queue_backlogs(queues: list[str]) -> dict[str, int]:
    """Messages waiting in each queue (works on Redis and RabbitMQ alike).

    A queue that still holds messages has not lost them: the sweep leaves its work alone, so
    re-sending after a broker restart that kept its messages (AOF, quorum queues) doubles
    nothing. A queue that cannot be read counts as empty (the re-send is idempotent).

    The queues are declared with their configured arguments (a no-op when they exist), not
    passively: kombu's Redis transport answers a passive declare with 404 when a
    ``global_keyprefix`` is set, even for a queue holding messages.
    """
    counts: dict[str, int] = {}
    broker = str(app.conf.broker_url)
    try:
        with app.connection_for_read() as conn:
            channel = conn.channel()
            for name in queues:
                # A queue we do not consume (the broker marker) is declared as it was made.
                queue = app.amqp.queues.get(name) or queue_for_broker(name, broker)
                try:
                    ok = queue(channel).queue_declare()
                    counts[name] = int(ok.message_count) if ok else 0
                except Exception:
                    log.warning("could not read the length of queue %s", name, exc_info=True)
                    counts[name] = 0
                    channel = conn.channel()
    except Exception:
        log.warning("could not read queue lengths; sweeping as if every queue were empty")
    return counts


def _all_providers() -> list[str]:
    from pipeline.scraper_providers import SCRAPER_PROVIDERS
    from providers.registry import available_providers

    return sorted(set(available_providers()) | set(SCRAPER_PROVIDERS))


@app.task(name="tasks.maintenance.sweep_stalled", keep_failed=False, max_retries=2)
def sweep_stalled(older_than_s: int | None = None, reason: str = "beat") -> dict[str, int]:
    """Re-send every hand-off still owed (see the module docstring); counts of what was sent."""
    from pipeline.gold import owed_older_than
    from tasks.gold import (
        merge_playlist_task,
        refresh_views_task,
        update_artists_task,
        update_owed_tracks_task,
        update_tracks,
    )
    from tasks.replay import replay_jobs

    age = SWEEP_AFTER_S if older_than_s is None else older_than_s
    providers = _all_providers()
    backlog = queue_backlogs(
        sorted({queue_for(p) for p in providers} | {"merge", broker_mark.MARK_QUEUE})
    )
    # A broker that lost its marker lost every message queued before: a backlog then only holds
    # what arrived since, and every unleased piece of work is re-sent now (tasks.broker_mark).
    broker_kept = broker_mark.kept_in(backlog)
    if not broker_kept:
        age, backlog = 0, {}
    busy = [p for p in providers if backlog.get(queue_for(p), 0) > 0]
    reruns: list[recovery.FailedWorkRow] = []
    with session_scope() as session:
        if not recovery.try_sweep_lock(session):
            log.info("sweep (%s) skipped: another sweep or reap is running", reason)
            if reason == "reconnect":  # must not be lost to a beat sweep running with the age
                sweep_stalled.apply_async(
                    kwargs={"older_than_s": older_than_s, "reason": reason}, countdown=5
                )
            return {"skipped": 1}
        if reason == "reconnect":
            last = recovery.mark_at(session, "sweep_reconnect")
            now = session.execute(text("SELECT now()")).scalar_one()
            if last is not None and (now - last).total_seconds() < RECONNECT_DEBOUNCE_S:
                return {"skipped": 1}
            recovery.mark(session, "sweep_reconnect")
        recovery.mark(session, "sweep")
        journal.prune(session)  # answers of lookups closed without being recorded
        nxt, orphans = maintenance.find_stalled_work(
            session, age, busy_providers=busy, merges_busy=backlog.get("merge", 0) > 0
        )
        if orphans:
            run_id = start_run(session, "incremental", "sweeper")
            nxt.extend(create_jobs(session, run_id, orphans))
        gold = maintenance.stale_gold(session, age)
        playlists = recovery.stalled_playlists(session, age, SWEEP_LOOKBACK_S)
        views = recovery.views_stale(session, max(age, 1))
        owed = owed_older_than(session, "artists", age)
        owed_tracks = owed_older_than(session, "tracks", age)
        replays = recovery.stalled_replays(session, age)
        artists = recovery.orphan_artists(session, age, SWEEP_LOOKBACK_S)
        for artist_id in artists:
            artist_to_silver(session, artist_id)
        reruns = recovery.claim_failed_work(session, age, MAX_RERUNS)
        # Issue 20: leased lookups were left alone; one more sweep once the leases alive now
        # have run out heals what lost its message within the lease instead of the next beat
        # sweep (chaos runs: 92-101 s healing, the 60 s interval after a 30-46 s lease).
        expiry = recovery.lease_expiry_s(session) if reason == "reconnect" else None
    # Everything is sent after commit, so a re-sent message never races its own state.
    dispatch(nxt)
    if gold:
        update_tracks.delay(gold)
    for bronze_playlist_id in playlists:
        merge_playlist_task.delay(bronze_playlist_id)
    if views:
        refresh_views_task.delay()
    if owed:
        update_artists_task.delay()
    if owed_tracks:
        update_owed_tracks_task.delay()
    for r in replays:
        size = 100 if r.mode == "stored" else 20
        for start in range(0, len(r.job_ids), size):
            replay_jobs.delay(r.run_id, r.job_ids[start : start + size], r.mode, r.partial)
    _rerun(reruns)
    if not broker_kept:
        broker_mark.set_mark()  # only now: a sweep skipped above leaves it missing for the next
    if expiry is not None and expiry + 1 < SWEEP_INTERVAL_S:
        sweep_stalled.apply_async(
            kwargs={"reason": "lease-expiry"}, countdown=publish_countdown(expiry + 1)
        )
    counts = {
        "lookups": sum(len(v) for v in nxt.lookups.values()),
        "merges": len(nxt.merges),
        "orphans": len(orphans),
        "gold": len(gold),
        "playlists": len(playlists),
        "views": int(views),
        "gold_artists": owed,
        "gold_tracks": owed_tracks,
        "replays": sum(len(r.job_ids) for r in replays),
        "artists": len(artists),
        "failed_work": len(reruns),
    }
    if any(counts.values()):
        lost = "" if broker_kept else " (the broker had lost its messages)"
        log.warning("sweeper (%s) re-sent stalled work%s: %s", reason, lost, counts)
    return counts


def _rerun(rows: list[recovery.FailedWorkRow]) -> None:
    for row in rows:
        options: dict[str, Any] = {}
        if row.task_name == "tasks.enrich.lookup" and row.args:
            queue = queue_for(str(row.args[0]))
            options = {"queue": queue, "routing_key": queue}
        app.send_task(row.task_name, args=row.args, kwargs=row.kwargs, **options)


@app.task(name="tasks.maintenance.rerun_failed_work", keep_failed=False)
def rerun_failed_work(ids: list[str]) -> int:
    """An operator's re-run of chosen ``failed_work`` rows (transient or not)."""
    with session_scope() as session:
        rows = recovery.claim_failed_work(session, 0, MAX_RERUNS, ids=ids)
    _rerun(rows)
    return len(rows)


@app.task(name="tasks.maintenance.reap_stuck_runs", keep_failed=False, max_retries=2)
def reap_stuck_runs(older_than_s: int | None = None) -> list[str]:
    """Runs open too long: re-send all their open work; past the give-up age, close them.

    Holds the sweep lock, so it never runs in the middle of a sweep; a job is failed for good
    only in a run open ``REAP_GIVE_UP_S`` (default 7 days), after the sweeper and this task
    have re-sent its work many times over."""
    resend_after = REAP_AFTER_S if older_than_s is None else older_than_s
    with session_scope() as session:
        if not recovery.try_sweep_lock(session):
            return []
        nxt: Next = maintenance.resend_stuck_runs(session, resend_after)
        closed = maintenance.reap_runs(session, max(REAP_GIVE_UP_S, resend_after))
    dispatch(nxt)
    if nxt:
        log.warning(
            "reaper re-sent the open work of runs open over %d s: %d lookups, %d merges",
            resend_after,
            sum(len(v) for v in nxt.lookups.values()),
            len(nxt.merges),
        )
    return closed
