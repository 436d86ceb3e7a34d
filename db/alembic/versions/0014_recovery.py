"""014: runs db/migrations/medallion/014_recovery_{up,down}.sql."""

from __future__ import annotations

from db.migrate import run_migration_file

revision: str = "0014"
down_revision: str | None = "0012"
branch_labels = None
depends_on = None

NUMBER = 14


def upgrade() -> None:
    run_migration_file(NUMBER, "up")


def downgrade() -> None:
    run_migration_file(NUMBER, "down")
