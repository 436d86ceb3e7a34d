"""020: runs db/migrations/medallion/020_track_aliases_{up,down}.sql."""

from __future__ import annotations

from db.migrate import run_migration_file

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels = None
depends_on = None

NUMBER = 20


def upgrade() -> None:
    run_migration_file(NUMBER, "up")


def downgrade() -> None:
    run_migration_file(NUMBER, "down")
