"""010: runs db/migrations/medallion/010_merge_history_index_{up,down}.sql."""

from __future__ import annotations

from db.migrate import run_migration_file

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels = None
depends_on = None

NUMBER = 10


def upgrade() -> None:
    run_migration_file(NUMBER, "up")


def downgrade() -> None:
    run_migration_file(NUMBER, "down")
