"""Shared benchmark plumbing: the final JSON line and a database to run against.

Every bench prints human-readable lines, then as its LAST line
``{"bench": NAME, "value": X, "unit": U, "baseline": B, "ratio": R}``, where the baseline is
measured in the same run on the same machine.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["Timer", "bench_database", "emit", "libpq"]


def emit(bench: str, value: float, unit: str, baseline: float, ratio: float) -> None:
    """Print the machine-readable result line (must be the last line of output)."""
    print(
        json.dumps(
            {
                "bench": bench,
                "value": round(value, 3),
                "unit": unit,
                "baseline": round(baseline, 3),
                "ratio": round(ratio, 3),
            }
        ),
        flush=True,
    )


class Timer:
    """``with Timer() as t: ...; t.seconds``."""

    seconds: float = 0.0

    def __enter__(self) -> Timer:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start


@contextmanager
def bench_database() -> Iterator[str]:
    """``DATABASE_URL`` if set (benches roll their work back), else a throwaway database.

    The throwaway one is created on ``TEST_DATABASE_ADMIN_URL`` (default local PostgreSQL),
    migrated with the real migrations and dropped afterwards.
    """
    import uuid

    import psycopg
    from sqlalchemy.engine import make_url

    from db.migrate import upgrade
    from db.settings import database_url, normalise_url

    url = database_url()
    if url is not None:
        yield url
        return
    admin = make_url(
        normalise_url(
            os.environ.get(
                "TEST_DATABASE_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
            )
        )
    )
    admin_libpq = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"sn_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_libpq, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = admin.set(database=name).render_as_string(hide_password=False)
        upgrade(url)
        yield url
    finally:
        with psycopg.connect(admin_libpq, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def libpq(url: str) -> str:
    """SQLAlchemy URL -> libpq URL for psycopg.connect."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
