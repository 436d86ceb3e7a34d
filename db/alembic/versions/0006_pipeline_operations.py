"""006: runs db/migrations/medallion/006_pipeline_operations_{up,down}.sql."""

from __future__ import annotations

from db.migrate import run_migration_file

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels = None
depends_on = None

NUMBER = 6


def upgrade() -> None:
    run_migration_file(NUMBER, "up")


def downgrade() -> None:
    run_migration_file(NUMBER, "down")
