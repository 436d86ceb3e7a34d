"""The root test harness: migrated database, rolled-back sessions, service checks."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.conftest import require_service

pytestmark = pytest.mark.db


def test_database_is_migrated(db_session: Session) -> None:
    """The session database has the seeded waterfall (migrations ran)."""
    rows = db_session.execute(text("SELECT count(*) FROM metadata_enrichment_config")).scalar()
    assert rows == 14


@pytest.mark.parametrize("attempt", [1, 2])
def test_outer_transaction_is_rolled_back(db_session: Session, attempt: int) -> None:
    """A row committed in one test is gone in the next (each run sees exactly one row)."""
    db_session.execute(
        text(
            "INSERT INTO data_quality_metrics (metric_date, data_layer)"
            " VALUES ('2001-01-01', 'gold')"
        )
    )
    db_session.commit()
    count = db_session.execute(
        text("SELECT count(*) FROM data_quality_metrics WHERE metric_date = '2001-01-01'")
    ).scalar()
    assert count == 1


def test_unreachable_service_fails_when_required(monkeypatch: pytest.MonkeyPatch) -> None:
    """SONGNODES_REQUIRE_SERVICES=1 turns an unreachable-service skip into a failure."""
    monkeypatch.setenv("SONGNODES_REQUIRE_SERVICES", "1")
    with pytest.raises(pytest.fail.Exception, match="not reachable"):
        require_service("nothing", "127.0.0.1", 1)


def test_unreachable_service_skips_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without SONGNODES_REQUIRE_SERVICES an unreachable service is a skip with a reason."""
    monkeypatch.delenv("SONGNODES_REQUIRE_SERVICES", raising=False)
    with pytest.raises(pytest.skip.Exception, match="nothing is not reachable"):
        require_service("nothing", "127.0.0.1", 1)
