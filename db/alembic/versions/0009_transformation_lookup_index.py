"""009: runs db/migrations/medallion/009_transformation_lookup_index_{up,down}.sql."""

from __future__ import annotations

from db.migrate import run_migration_file

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels = None
depends_on = None

NUMBER = 9


def upgrade() -> None:
    run_migration_file(NUMBER, "up")


def downgrade() -> None:
    run_migration_file(NUMBER, "down")
