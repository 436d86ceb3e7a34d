"""021: runs db/migrations/medallion/021_request_replies_{up,down}.sql."""

from __future__ import annotations

from db.migrate import run_migration_file

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels = None
depends_on = None

NUMBER = 21


def upgrade() -> None:
    run_migration_file(NUMBER, "up")


def downgrade() -> None:
    run_migration_file(NUMBER, "down")
