"""012: runs db/migrations/medallion/012_setlist_entries_{up,down}.sql."""

from __future__ import annotations

from db.migrate import run_migration_file

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels = None
depends_on = None

NUMBER = 12


def upgrade() -> None:
    run_migration_file(NUMBER, "up")


def downgrade() -> None:
    run_migration_file(NUMBER, "down")
