"""005: runs db/migrations/medallion/005_pipeline_replay_support_{up,down}.sql."""

from __future__ import annotations

from db.migrate import run_migration_file

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels = None
depends_on = None

NUMBER = 5


def upgrade() -> None:
    run_migration_file(NUMBER, "up")


def downgrade() -> None:
    run_migration_file(NUMBER, "down")
