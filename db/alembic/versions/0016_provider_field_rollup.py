"""016: runs db/migrations/medallion/016_provider_field_rollup_{up,down}.sql."""

from __future__ import annotations

from db.migrate import run_migration_file

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels = None
depends_on = None

NUMBER = 16


def upgrade() -> None:
    run_migration_file(NUMBER, "up")


def downgrade() -> None:
    run_migration_file(NUMBER, "down")
