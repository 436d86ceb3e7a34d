"""The ORM models describe exactly the schema the SQL migrations create."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, text

from db.models import GOLD_MATERIALIZED_VIEWS, GOLD_VIEWS, Base

pytestmark = pytest.mark.db

# Not expressible in (or deliberately not mapped by) the ORM, so excluded from the comparison:
# - the gold views: two materialised (refreshed by a SQL function) and one plain view (007),
#   all read with SQL;
# - alembic_version, Alembic's own bookkeeping table;
# - tables of later migrations (006+) owned by other packages, unless they are mapped here.
# Trigger functions, CHECK bodies and generated-column expressions are never compared by
# Alembic autogenerate; the behaviour tests cover them.
_SKIP_TABLES = {*GOLD_MATERIALIZED_VIEWS, *GOLD_VIEWS, "alembic_version"}


def _include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    if type_ == "table":
        if name in _SKIP_TABLES:
            return False
        # A reflected table with no model is a later migration's table (e.g. 006).
        return not (reflected and compare_to is None)
    table = getattr(obj, "table", None)
    return not (table is not None and table.name in _SKIP_TABLES)


def _diff(conn: Connection) -> list[Any]:
    ctx = MigrationContext.configure(conn, opts={"compare_type": True, "include_object": _include})
    with warnings.catch_warnings():
        # Alembic warns that it skips expression indexes (e.g. ``scraped_at DESC``); the
        # column-level comparison of those indexes is what we lose, nothing else.
        warnings.simplefilter("ignore")
        return list(compare_metadata(ctx, Base.metadata))


def test_models_match_migrated_schema(db_connection: Connection) -> None:
    """Autogenerate finds no difference between Base.metadata and the migrated database."""
    assert _diff(db_connection) == []


def test_comparison_detects_drift(db_connection: Connection) -> None:
    """The comparison is not vacuous: an extra column and a dropped unique index show up."""
    db_connection.execute(text("ALTER TABLE silver_enriched_tracks ADD COLUMN drift_probe INT"))
    db_connection.execute(text("DROP INDEX uq_silver_enriched_tracks_isrc"))
    kinds = {
        entry[0] if isinstance(entry, tuple) else entry[0][0] for entry in _diff(db_connection)
    }
    assert {"remove_column", "add_index"} <= kinds


def test_every_table_is_mapped(db_connection: Connection) -> None:
    """Each of the 19 medallion tables, the 4 operational tables of 006, 012's
    playlist_entry_flags, the 2 recovery tables of 014, the 3 alert tables of 015, 017's
    silver_field_checks and enrichment_flights, 018's enrichment_lookup_answers and 019's
    gold_artist_refresh_queue, 020's silver_track_aliases, 021's enrichment_request_replies,
    022's silver_track_sightings and 023's gold_track_refresh_queue has a model."""
    assert len(Base.metadata.tables) == 37
    names = set(
        db_connection.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ).scalars()
    )
    assert set(Base.metadata.tables) <= names


def test_gold_view_constants_match_the_catalogue(db_connection: Connection) -> None:
    """GOLD_MATERIALIZED_VIEWS are exactly the materialised views, GOLD_VIEWS plain views."""
    matviews = db_connection.execute(
        text("SELECT matviewname FROM pg_matviews WHERE schemaname = current_schema()")
    ).scalars()
    assert set(matviews) == set(GOLD_MATERIALIZED_VIEWS)
    views = db_connection.execute(
        text("SELECT viewname FROM pg_views WHERE schemaname = current_schema()")
    ).scalars()
    assert set(GOLD_VIEWS) <= set(views)
