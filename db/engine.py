"""One SQLAlchemy engine per process and the unit-of-work ``session_scope``.

Workers call :func:`dispose_engine` after fork (``worker_process_init``) so a child never
reuses its parent's sockets; :func:`get_engine` then lazily builds a fresh one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from db.settings import database_url

__all__ = ["dispose_engine", "get_engine", "resolve_database_url", "session_scope"]

_lock = threading.Lock()
_engine: Engine | None = None
_sessionmaker: sessionmaker[Session] | None = None


def resolve_database_url() -> str:
    """``DATABASE_URL`` when set, else the embedded PostgreSQL (started on first use)."""
    url = database_url()
    if url is not None:
        return url
    from db.embedded import ensure_embedded_database

    return ensure_embedded_database()


def get_engine() -> Engine:
    """The process-wide engine (``pool_pre_ping`` survives database restarts)."""
    global _engine, _sessionmaker
    with _lock:
        if _engine is None:
            _engine = create_engine(
                resolve_database_url(),
                pool_pre_ping=True,
                future=True,
                # JIT compiles a plan when its estimated cost is high, which stale statistics
                # on fast-growing tables make common: a 20-row setlist read spent 37 ms of its
                # 197 ms compiling (bench/sightings). The pipeline's statements are short OLTP
                # ones, where JIT never pays.
                connect_args={"options": "-c jit=off"},
            )
            _sessionmaker = sessionmaker(bind=_engine, expire_on_commit=False)
        return _engine


def dispose_engine() -> None:
    """Close every pooled connection and forget the engine (after fork, at shutdown, in tests)."""
    global _engine, _sessionmaker
    with _lock:
        if _engine is not None:
            _engine.dispose()
        _engine = None
        _sessionmaker = None


@contextmanager
def session_scope() -> Iterator[Session]:
    """Commit on success, roll back on any error, always close."""
    get_engine()
    assert _sessionmaker is not None
    session = _sessionmaker()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
