"""023: runs db/migrations/medallion/023_gold_track_queue_{up,down}.sql."""

from __future__ import annotations

from db.migrate import run_migration_file

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels = None
depends_on = None

NUMBER = 23


def upgrade() -> None:
    run_migration_file(NUMBER, "up")


def downgrade() -> None:
    run_migration_file(NUMBER, "down")
