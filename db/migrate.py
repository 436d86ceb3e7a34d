"""Programmatic Alembic: ``upgrade(url)`` / ``downgrade(url)``, and the helper every revision
uses to run its SQL file (so psql and Alembic always apply exactly the same statements).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

__all__ = [
    "MIGRATIONS_DIR",
    "alembic_config",
    "downgrade",
    "run_migration_file",
    "sql_file",
    "upgrade",
]

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations" / "medallion"
ALEMBIC_DIR = Path(__file__).resolve().parent / "alembic"


def sql_file(number: int, direction: str) -> Path:
    """The one ``{NNN}_*_{direction}.sql`` file of migration ``number``."""
    if direction not in ("up", "down"):
        raise ValueError(f"direction must be 'up' or 'down', not {direction!r}")
    matches = sorted(MIGRATIONS_DIR.glob(f"{number:03d}_*_{direction}.sql"))
    if len(matches) != 1:
        raise FileNotFoundError(
            f"expected exactly one {number:03d}_*_{direction}.sql in {MIGRATIONS_DIR}, "
            f"found {[m.name for m in matches]}"
        )
    return matches[0]


def run_migration_file(number: int, direction: str) -> None:
    """Execute a migration SQL file inside the current Alembic transaction.

    The text goes to psycopg's raw connection without parameters, so it travels as one
    simple-protocol query: several statements, dollar-quoted bodies and ``%`` all pass untouched
    (SQLAlchemy's ``text()`` would treat ``:name`` and ``%`` specially).
    """
    from alembic import op

    if op.get_context().as_sql:
        raise NotImplementedError(
            "offline (--sql) mode is not supported: apply the SQL files with psql -f instead"
        )
    sql = sql_file(number, direction).read_text(encoding="utf-8")
    raw = op.get_bind().connection.driver_connection
    assert raw is not None
    raw.execute(sql)


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at ``db/alembic`` and ``url`` (no alembic.ini needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(ALEMBIC_DIR))
    # ConfigParser interpolation: a literal % in a password must be doubled.
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations up to ``revision``."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    """Roll migrations back to ``revision`` (``base`` removes every object of ours)."""
    command.downgrade(alembic_config(url), revision)
