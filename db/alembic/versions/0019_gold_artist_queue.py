"""019: runs db/migrations/medallion/019_gold_artist_queue_{up,down}.sql."""

from __future__ import annotations

from db.migrate import run_migration_file

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels = None
depends_on = None

NUMBER = 19


def upgrade() -> None:
    run_migration_file(NUMBER, "up")


def downgrade() -> None:
    run_migration_file(NUMBER, "down")
