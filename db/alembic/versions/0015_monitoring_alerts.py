"""015: runs db/migrations/medallion/015_monitoring_alerts_{up,down}.sql."""

from __future__ import annotations

from db.migrate import run_migration_file

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels = None
depends_on = None

NUMBER = 15


def upgrade() -> None:
    run_migration_file(NUMBER, "up")


def downgrade() -> None:
    run_migration_file(NUMBER, "down")
