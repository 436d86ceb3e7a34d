"""Journal writes (migrations 018 and 021): one kept autocommit connection per process.

The answer journal (``pipeline.lookups.journal``) and the request reply journal
(``pipeline.lookups.replies``) write a row as each answer arrives, from the lookup threads,
outside any transaction; both go through :func:`write_now`.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
from collections import deque
from collections.abc import Mapping
from typing import Any

import psycopg
from sqlalchemy import Engine, PoolProxiedConnection

from db.engine import get_engine

__all__ = ["BACKLOG_MAX", "flush", "write_now"]

log = logging.getLogger(__name__)

_lock = threading.Lock()
# (pid, engine, pooled connection) kept by this process for journal writes.
_held: tuple[int, Engine, PoolProxiedConnection] | None = None
_at_exit: list[bool] = []


def _journal_connection() -> Any:
    """This process's journal connection: one connection of the engine's pool, kept (a pool
    checkout, its ping and BEGIN/COMMIT round trips per answer cost more worker CPU than the
    write), in autocommit with ``synchronous_commit = off`` for its whole session (it writes
    nothing else). Call with ``_lock`` held."""
    global _held
    engine = get_engine()
    if _held is None or _held[0] != os.getpid() or _held[1] is not engine:
        _drop_connection()  # the engine was replaced (tests, the demo): close the old one
        if not _at_exit:
            atexit.register(_drop_connection)  # closed, not left to the collector, at exit
            _at_exit.append(True)
        raw = engine.raw_connection()
        driver: Any = raw.driver_connection
        driver.autocommit = True
        driver.execute("SET synchronous_commit = off")
        _held = (os.getpid(), engine, raw)
    return _held[2].driver_connection


def _drop_connection() -> None:
    global _held
    if _held is not None and _held[0] == os.getpid():
        with contextlib.suppress(Exception):
            _held[2].invalidate()
    _held = None


#: Writes that failed because the connection did (PostgreSQL restarting), oldest first: each is
#: tried again before the next write and by :func:`flush` (``lease`` calls it before reading the
#: journals), so an answer that arrived during a restart still spares the next delivery its
#: request. Bounded: in a long outage the oldest go (those lookups are at worst asked again).
BACKLOG_MAX = 10_000
_backlog: deque[tuple[str, Mapping[str, Any], str]] = deque(maxlen=BACKLOG_MAX)


def _flush_locked() -> bool:
    while _backlog:
        sql, params, _what = _backlog[0]
        try:
            _journal_connection().execute(sql, params)
        except psycopg.OperationalError:
            _drop_connection()
            return False
        except Exception:
            log.warning("journaling %s failed for good", _what, exc_info=True)
        _backlog.popleft()
    return True


def flush() -> bool:
    """Write what failed earlier (:data:`BACKLOG_MAX` at most); True when nothing is left."""
    with _lock:
        return _flush_locked()


def write_now(sql: str, params: Mapping[str, Any], what: str) -> bool:
    """Run one journal write (psycopg placeholders) on this process's journal connection,
    autocommitted; False when it could not be written now (logged as journaling ``what``).
    A write that met a connection error is kept and tried again (see :data:`BACKLOG_MAX`)."""
    with _lock:
        if not _flush_locked():
            _backlog.append((sql, params, what))
            return False
        try:
            _journal_connection().execute(sql, params)
        except psycopg.OperationalError:
            _drop_connection()
            _backlog.append((sql, params, what))
            log.warning("journaling %s failed; kept to write later", what, exc_info=True)
            return False
        except Exception:
            _drop_connection()
            log.warning("journaling %s failed", what, exc_info=True)
            return False
    return True
