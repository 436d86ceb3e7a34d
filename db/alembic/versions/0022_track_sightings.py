"""022: runs db/migrations/medallion/022_track_sightings_{up,down}.sql."""

from __future__ import annotations

from db.migrate import run_migration_file

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels = None
depends_on = None

NUMBER = 22


def upgrade() -> None:
    run_migration_file(NUMBER, "up")


def downgrade() -> None:
    run_migration_file(NUMBER, "down")
