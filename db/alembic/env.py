"""Alembic environment: online only; every revision runs one of the medallion SQL files."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from db.models import Base
from db.settings import normalise_url

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    x_url = context.get_x_argument(as_dictionary=True).get("url")
    if x_url:
        return normalise_url(x_url)
    configured = config.get_main_option("sqlalchemy.url")
    if configured:
        return normalise_url(configured)
    from db.engine import resolve_database_url

    return resolve_database_url()


def run_migrations_online() -> None:
    engine = create_engine(_url(), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                # One transaction per revision: a failure leaves the previous ones applied and
                # recorded, matching psql's file-by-file behaviour.
                transaction_per_migration=True,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) mode is not supported: apply the SQL files with psql -f")
run_migrations_online()
