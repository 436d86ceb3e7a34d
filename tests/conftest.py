"""Root test harness: real services, one throwaway database per test run (per xdist worker).

- ``require_service(name, host, port)``: skip with a clear reason when a service is unreachable,
  or fail when ``SONGNODES_REQUIRE_SERVICES=1`` (CI must not silently skip).
- ``db_url`` / ``engine``: a fresh database named after the xdist worker plus a random suffix on
  ``TEST_DATABASE_ADMIN_URL``, migrated by the real migrations (``db.migrate.upgrade``), dropped
  at session end. Created lazily: pure unit tests never touch PostgreSQL.
- ``db_session`` / ``db_connection``: each test runs inside an outer transaction that is rolled
  back; ``session.commit()`` inside the test only releases a savepoint.
Tests using these fixtures are marked ``db`` automatically.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
_DB_FIXTURES = {"db_url", "engine", "db_session", "db_connection", "database_url_env"}


def services_required() -> bool:
    """True when a missing service must fail the run instead of skipping."""
    return os.environ.get("SONGNODES_REQUIRE_SERVICES", "") == "1"


def require_service(name: str, host: str, port: int, timeout: float = 1.0) -> None:
    """Skip (or fail under ``SONGNODES_REQUIRE_SERVICES=1``) when ``host:port`` is unreachable."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return
    except OSError as exc:
        reason = f"{name} is not reachable at {host}:{port} ({exc})"
    if services_required():
        pytest.fail(f"{reason}; SONGNODES_REQUIRE_SERVICES=1 forbids skipping", pytrace=False)
    pytest.skip(reason)


def admin_url() -> str:
    """SQLAlchemy URL of the server test databases are created on."""
    from db.settings import normalise_url

    return normalise_url(os.environ.get("TEST_DATABASE_ADMIN_URL", DEFAULT_ADMIN_URL))


def libpq_url(sqlalchemy_url: str) -> str:
    """The same URL without the ``+psycopg`` driver suffix, for psycopg.connect / psql."""
    return (
        make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)
    )


def create_test_database(prefix: str = "sn_test") -> str:
    """Create an empty uniquely named database; return its SQLAlchemy URL."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"{prefix}_{worker}_{uuid.uuid4().hex[:10]}".lower()
    with psycopg.connect(libpq_url(admin_url()), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(admin_url()).set(database=name).render_as_string(hide_password=False)


def drop_test_database(url: str) -> None:
    """Drop a database created by :func:`create_test_database` (kicking any leftover session)."""
    name = make_url(url).database
    with psycopg.connect(libpq_url(admin_url()), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that asks for a database fixture with ``db``."""
    for item in items:
        if _DB_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.db)


@pytest.fixture(scope="session")
def postgres_available() -> None:
    """PostgreSQL at ``TEST_DATABASE_ADMIN_URL`` is reachable (else skip / fail)."""
    url = make_url(admin_url())
    require_service("PostgreSQL", url.host or "127.0.0.1", url.port or 5432)


@pytest.fixture(scope="session")
def redis_url() -> str:
    """``REDIS_URL`` (default local Redis db 0) when reachable (else skip / fail)."""
    url = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
    parsed = make_url(url.replace("rediss://", "redis://", 1))
    require_service("Redis", parsed.host or "127.0.0.1", parsed.port or 6379)
    return url


@contextmanager
def migrated_database(prefix: str = "sn_test") -> Iterator[str]:
    """A fresh database migrated to head by the real migrations; dropped afterwards."""
    from db.migrate import upgrade

    url = create_test_database(prefix)
    try:
        upgrade(url)
        yield url
    finally:
        drop_test_database(url)


@contextmanager
def engine_on(url: str) -> Iterator[Engine]:
    eng = create_engine(url, pool_pre_ping=True)
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture(scope="session")
def db_url(postgres_available: None) -> Iterator[str]:
    """A fresh database for this run/worker, migrated to head by the real migrations."""
    with migrated_database() as url:
        yield url


@pytest.fixture(scope="session")
def engine(db_url: str) -> Iterator[Engine]:
    """Engine on the migrated test database."""
    with engine_on(db_url) as eng:
        yield eng


@pytest.fixture
def db_connection(engine: Engine) -> Iterator[Connection]:
    """A connection inside an outer transaction rolled back after the test."""
    with engine.connect() as conn:
        outer = conn.begin()
        try:
            yield conn
        finally:
            if outer.is_active:
                outer.rollback()


@pytest.fixture
def db_session(db_connection: Connection) -> Iterator[Session]:
    """ORM session joined to the rolled-back outer transaction (commits become savepoints)."""
    session = Session(bind=db_connection, join_transaction_mode="create_savepoint")
    try:
        yield session
    finally:
        session.close()


@pytest.fixture
def database_url_env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point ``DATABASE_URL`` (and ``db.engine``) at the test database for code under test.

    Unlike ``db_session`` nothing is rolled back: what the code commits stays in the run's
    database, so such tests should use unique data.
    """
    from db.engine import dispose_engine

    monkeypatch.setenv("DATABASE_URL", db_url)
    dispose_engine()
    try:
        yield db_url
    finally:
        dispose_engine()
