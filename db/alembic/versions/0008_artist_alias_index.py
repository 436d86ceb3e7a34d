"""008: runs db/migrations/medallion/008_artist_alias_index_{up,down}.sql."""

from __future__ import annotations

from db.migrate import run_migration_file

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels = None
depends_on = None

NUMBER = 8


def upgrade() -> None:
    run_migration_file(NUMBER, "up")


def downgrade() -> None:
    run_migration_file(NUMBER, "down")
