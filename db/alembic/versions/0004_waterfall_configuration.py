"""004: runs db/migrations/medallion/004_waterfall_configuration_{up,down}.sql."""

from __future__ import annotations

from db.migrate import run_migration_file

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels = None
depends_on = None

NUMBER = 4


def upgrade() -> None:
    run_migration_file(NUMBER, "up")


def downgrade() -> None:
    run_migration_file(NUMBER, "down")
