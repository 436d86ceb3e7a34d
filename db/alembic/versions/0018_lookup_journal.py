"""018: runs db/migrations/medallion/018_lookup_journal_{up,down}.sql."""

from __future__ import annotations

from db.migrate import run_migration_file

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels = None
depends_on = None

NUMBER = 18


def upgrade() -> None:
    run_migration_file(NUMBER, "up")


def downgrade() -> None:
    run_migration_file(NUMBER, "down")
