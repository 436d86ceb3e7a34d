"""001_bronze_layer: runs db/migrations/medallion/001_bronze_layer_{up,down}.sql."""

from __future__ import annotations

from db.migrate import run_migration_file

revision: str = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None

NUMBER = 1


def upgrade() -> None:
    run_migration_file(NUMBER, "up")


def downgrade() -> None:
    run_migration_file(NUMBER, "down")
