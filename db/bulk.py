"""Many rows in one statement: the rows sent as one JSON document, read by ``json_to_recordset``.

psycopg's ``executemany`` runs one statement per row (pipelined): the client adapts every row's
parameters on its own and the server binds and executes each one. The lineage a lookup or merge
batch writes is hundreds of rows, many of them JSON. Serialised once by the C JSON encoder and
expanded by PostgreSQL, 2000 such rows cost ~10 ms of client CPU instead of ~60 ms, and less
server time too. (Arrays per column with ``unnest`` were tried first: psycopg quotes every JSON
string of an array in Python, which made them four times slower than ``executemany``.)

A statement's template says ``FROM {rows}``; ``{rows}`` becomes a subquery with one typed column
per :data:`Column`. JSONB columns travel as JSON text (what :func:`pipeline.enrich.to_jsonb`
made, NUL already removed) and are cast on the server; numbers that are ``Decimal`` travel as
strings, which ``numeric`` reads exactly; lists become PostgreSQL arrays.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import TextClause, text
from sqlalchemy.orm import Session

__all__ = ["Bulk", "Column", "rows_json", "unique_waves"]

#: (key in each row dict, PostgreSQL type: ``uuid``, ``text``, ``int``, ``numeric``, ``bool``,
#: ``jsonb`` (the value is JSON text), ``text[]``, ``uuid[]``).
Column = tuple[str, str]


def _subquery(columns: Sequence[Column]) -> str:
    selected = ", ".join(
        f"r.{name}::jsonb AS {name}" if kind == "jsonb" else f"r.{name}" for name, kind in columns
    )
    record = ", ".join(f"{name} {'text' if kind == 'jsonb' else kind}" for name, kind in columns)
    return f"(SELECT {selected} FROM json_to_recordset(CAST(:rows AS json)) AS r({record})) AS r"


def rows_json(columns: Sequence[Column], rows: Sequence[Mapping[str, Any]]) -> str:
    """The ``:rows`` parameter: only the declared keys (a missing one is NULL)."""
    names = [name for name, _ in columns]
    # default=str: Decimal (exact for numeric), UUID; ensure_ascii=False: names stay UTF-8.
    return json.dumps([{n: r.get(n) for n in names} for r in rows], default=str, ensure_ascii=False)


@dataclass(frozen=True)
class Bulk:
    """A statement over many rows given as ``{rows}`` in its template (``FROM {rows}``)."""

    columns: tuple[Column, ...]
    sql: TextClause

    @classmethod
    def of(cls, template: str, columns: Sequence[Column]) -> Bulk:
        return cls(tuple(columns), text(template.format(rows=_subquery(columns))))

    def run(self, session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
        """Execute once for all ``rows`` (nothing when there are none)."""
        if rows:
            session.execute(self.sql, {"rows": rows_json(self.columns, rows)})


def unique_waves(
    rows: Sequence[Mapping[str, Any]], key: Callable[[Mapping[str, Any]], Hashable]
) -> list[list[Mapping[str, Any]]]:
    """Split rows so that no key repeats within a part, keeping each key's rows in order.

    ``INSERT ... ON CONFLICT DO UPDATE`` may not touch one row twice in a statement; the n-th
    row of each key goes in the n-th part, and the parts run in order (same final state as one
    statement per row)."""
    waves: list[list[Mapping[str, Any]]] = []
    seen: dict[Hashable, int] = {}
    for row in rows:
        k = key(row)
        n = seen.get(k, 0)
        seen[k] = n + 1
        if n == len(waves):
            waves.append([])
        waves[n].append(row)
    return waves
