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
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, PoolProxiedConnection

from db.engine import get_engine

__all__ = ["write_now"]

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


def write_now(sql: str, params: Mapping[str, Any], what: str) -> bool:
    """Run one journal write (psycopg placeholders) on this process's journal connection,
    autocommitted; False when it failed (logged as journaling ``what``)."""
    with _lock:
        try:
            _journal_connection().execute(sql, params)
        except Exception:
            _drop_connection()
            log.warning("journaling %s failed", what, exc_info=True)
            return False
    return True
