"""007: runs db/migrations/medallion/007_harmonic_recommendations_on_read_{up,down}.sql."""

from __future__ import annotations

from db.migrate import run_migration_file

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels = None
depends_on = None

NUMBER = 7


def upgrade() -> None:
    run_migration_file(NUMBER, "up")


def downgrade() -> None:
    run_migration_file(NUMBER, "down")
