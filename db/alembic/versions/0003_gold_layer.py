"""003_gold_layer: runs db/migrations/medallion/003_gold_layer_{up,down}.sql."""

from __future__ import annotations

from db.migrate import run_migration_file

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels = None
depends_on = None

NUMBER = 3


def upgrade() -> None:
    run_migration_file(NUMBER, "up")


def downgrade() -> None:
    run_migration_file(NUMBER, "down")
