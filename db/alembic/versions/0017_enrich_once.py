"""017: runs db/migrations/medallion/017_enrich_once_{up,down}.sql."""

from __future__ import annotations

from db.migrate import run_migration_file

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels = None
depends_on = None

NUMBER = 17


def upgrade() -> None:
    run_migration_file(NUMBER, "up")


def downgrade() -> None:
    run_migration_file(NUMBER, "down")
