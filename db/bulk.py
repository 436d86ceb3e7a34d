"""Many rows in one statement: the rows sent as one JSON document, read by ``json_to_recordset``.

psycopg's ``executemany`` runs one statement per row (pipelined): the client adapts every row's
parameters on its own and the server binds and executes each one. The lineage a lookup or merge
batch writes is hundreds of rows, many of them JSON. Serialised once by the C JSON encoder and
expanded by PostgreSQL, 2000 such rows cost ~10 ms of client CPU instead of ~60 ms, and less
server time too. (Arrays per column with ``unnest`` were tried first: psycopg quotes every JSON
string of an array in Python, which made them four times slower than ``executemany``.)

A statement's template says ``FROM {rows}``; ``{rows}`` becomes a subquery with one typed column
per :data:`Column`. A JSONB column's value is JSON text (what :func:`to_jsonb`
made, NUL already removed); it is embedded in the document as it is (an ``orjson.Fragment``), so
neither side encodes or parses it twice (sent as an escaped string and cast, the stored response
bodies cost the encoder and the server twice). Numbers that are ``Decimal`` travel as strings,
which ``numeric`` reads exactly; lists become PostgreSQL arrays.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import TextClause, text
from sqlalchemy.orm import Session

__all__ = ["Bulk", "Column", "json_text", "rows_json", "to_jsonb", "unique_waves", "without_nul"]

#: (key in each row dict, PostgreSQL type: ``uuid``, ``text``, ``int``, ``numeric``, ``bool``,
#: ``jsonb`` (the value is JSON text), ``text[]``, ``uuid[]``).
Column = tuple[str, str]


# Serialised as the standard library's ``json.dumps(default=str)`` would: datetimes and
# dataclasses go through ``str`` too (orjson would write them its own way).
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def json_text(value: Any) -> str:
    """JSON text for ``value``; anything not JSON becomes its ``str`` (Decimal, UUID, datetime).

    orjson (C, ~5x the standard encoder here) was taken for the lookup and merge writes, where
    encoding rows and stored bodies was ~7% of a worker's CPU. NaN and infinities, which are not
    JSON and which PostgreSQL refuses, become ``null`` (the standard encoder wrote ``NaN``, and the
    whole write failed). What orjson refuses (integers beyond 64 bits, non-string keys) falls
    back to the standard encoder, which writes them as JSON does.
    """
    try:
        return orjson.dumps(value, default=str, option=_ORJSON_OPTIONS).decode()
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(value, default=str, ensure_ascii=False)


def without_nul(value: Any) -> Any:
    """``value`` with every U+0000 in its strings (keys included) written as ``\\u0000``."""
    if isinstance(value, str):
        return value.replace("\x00", "\\u0000")
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [without_nul(v) for v in value]
    return value


def to_jsonb(value: Any) -> str:
    """JSON text PostgreSQL's JSONB accepts. JSONB refuses U+0000, so a NUL inside a provider's
    body is stored as the visible six characters ``\\u0000`` instead of failing the write."""
    encoded = json_text(value)
    if "\\u0000" not in encoded:  # JSON escapes NUL as \u0000: no NUL, nothing to rewrite
        return encoded  # (the walk below is most of the cost, and almost never needed)
    return json_text(without_nul(value))


def _subquery(columns: Sequence[Column]) -> str:
    # A JSONB value arrives wrapped in a one-element array: ``r.x -> 0`` keeps JSON ``null``
    # (the text "null") a JSONB null, where a bare JSON null would read as SQL NULL.
    selected = ", ".join(
        f"r.{name} -> 0 AS {name}" if kind == "jsonb" else f"r.{name}" for name, kind in columns
    )
    record = ", ".join(f"{name} {kind}" for name, kind in columns)
    return f"(SELECT {selected} FROM json_to_recordset(CAST(:rows AS json)) AS r({record})) AS r"


def _embedded(text: str | None) -> orjson.Fragment | None:
    return None if text is None else orjson.Fragment(f"[{text}]")


def rows_json(columns: Sequence[Column], rows: Sequence[Mapping[str, Any]]) -> str:
    """The ``:rows`` parameter: only the declared keys (a missing one is NULL)."""
    plain = [name for name, kind in columns if kind != "jsonb"]
    embedded = [name for name, kind in columns if kind == "jsonb"]
    doc = [{n: r.get(n) for n in plain} | {n: _embedded(r.get(n)) for n in embedded} for r in rows]
    return json_text(doc)


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
