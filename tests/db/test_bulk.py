"""db.bulk: many rows in one statement must write exactly what one statement per row wrote."""

from __future__ import annotations

import json
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.orm import Session

from db.bulk import Bulk, unique_waves

_COLUMNS = [
    ("id", "int"), ("name", "text"), ("cost", "numeric"), ("conf", "numeric"), ("ok", "bool"),
    ("doc", "jsonb"), ("tags", "text[]"),
]  # fmt: skip

ROWS = [
    {"id": 1, "name": "Ünïcødé שלום 🎵", "cost": Decimal("0.0012"), "conf": 0.99, "ok": True,
     "doc": json.dumps({"q": 'say "hi"\\', "n": [1, 2.5]}), "tags": ["a", "b,c"]},
    {"id": 2, "name": "'); DROP TABLE t; --", "cost": Decimal(0), "conf": 1, "ok": False,
     "doc": "null", "tags": []},
    {"id": 3, "name": None, "cost": None, "conf": None, "ok": None, "doc": None, "tags": None},
    {"id": 4},  # every other key missing: NULL
]  # fmt: skip


def test_bulk_insert_writes_every_row_with_its_types(db_session: Session) -> None:
    """Decimals stay exact, ints and floats mix in one numeric column, JSON text lands as JSONB
    (``'null'`` as JSON null, ``None`` as SQL NULL), lists as arrays, missing keys as NULL,
    strings (quotes, injection text, RTL, emoji) byte for byte."""
    db_session.execute(
        text(
            "CREATE TEMP TABLE bulk_t (id int, name text, cost numeric, conf numeric(3,2), "
            "ok bool, doc jsonb, tags text[]) ON COMMIT DROP"
        )
    )
    insert = Bulk.of(
        "INSERT INTO bulk_t SELECT r.id, r.name, r.cost, r.conf, r.ok, r.doc, r.tags FROM {rows}",
        _COLUMNS,
    )
    insert.run(db_session, ROWS)
    insert.run(db_session, [])  # nothing to do, no statement
    got = db_session.execute(
        text(
            "SELECT id, name, cost, conf, ok, doc, jsonb_typeof(doc), tags FROM bulk_t ORDER BY id"
        )
    ).all()
    assert [tuple(r) for r in got] == [
        (1, "Ünïcødé שלום 🎵", Decimal("0.0012"), Decimal("0.99"), True,
         {"q": 'say "hi"\\', "n": [1, 2.5]}, "object", ["a", "b,c"]),
        (2, "'); DROP TABLE t; --", Decimal(0), Decimal("1.00"), False, None, "null", []),
        (3, None, None, None, None, None, None, None),
        (4, None, None, None, None, None, None, None),
    ]  # fmt: skip


def test_unique_waves_never_repeat_a_key_and_keep_each_keys_order() -> None:
    rows = [{"k": k, "n": n} for n, k in enumerate("abacbaa")]
    waves = unique_waves(rows, lambda r: r["k"])
    assert [[(r["k"], r["n"]) for r in w] for w in waves] == [
        [("a", 0), ("b", 1), ("c", 3)],
        [("a", 2), ("b", 4)],
        [("a", 5)],
        [("a", 6)],
    ]
    assert unique_waves([], lambda r: r) == []
