"""002_silver_layer: runs db/migrations/medallion/002_silver_layer_{up,down}.sql."""

from __future__ import annotations

from db.migrate import run_migration_file

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None

NUMBER = 2


def upgrade() -> None:
    run_migration_file(NUMBER, "up")


def downgrade() -> None:
    run_migration_file(NUMBER, "down")
