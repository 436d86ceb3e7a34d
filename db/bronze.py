"""The bulk append path into bronze: COPY into a temp staging table, then one
``INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING``.

Results are aligned with the input: element i is the new row's id, or None when row i was a
duplicate (of an existing row or of an earlier row in the same batch), so callers know exactly
what they added. Nothing is committed here: the caller's transaction decides.

PostgreSQL text and jsonb refuse the NUL character; such rows are rejected with a ``ValueError``
naming the row and field before anything is sent to the database.

Idempotency: a row is a duplicate when its identity columns, ``content_hash`` (raw_json, in its
jsonb form) and ``fields_hash`` (every other stored field, as given: :func:`fields_hash`) all
match an existing row's (NULLS NOT DISTINCT), so a correction of any field is a new row and an
exact redelivery is not.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Jsonb
from sqlalchemy import Connection
from sqlalchemy.orm import Session

__all__ = [
    "append_api_enrichment",
    "append_bronze_artists",
    "append_bronze_playlists",
    "append_bronze_tracks",
    "fields_hash",
    "find_nul",
]

ConnectionLike = Session | Connection | psycopg.Connection[Any]

_REQUIRED = ("source", "scraper_version", "raw_json")
# (column, COPY type) per table; ``source_url`` is NOT NULL for tracks and playlists only.
_TRACK_COLUMNS = (
    ("source", "text"),
    ("source_url", "text"),
    ("source_track_id", "text"),
    ("scraper_version", "text"),
    ("raw_json", "jsonb"),
    ("artist_name", "text"),
    ("track_title", "text"),
    ("playlist_id", "uuid"),
    ("position", "int4"),
    ("scraped_at", "timestamptz"),
)
_PLAYLIST_COLUMNS = (
    ("source", "text"),
    ("source_url", "text"),
    ("source_playlist_id", "text"),
    ("scraper_version", "text"),
    ("raw_json", "jsonb"),
    ("playlist_name", "text"),
    ("artist_name", "text"),
    ("event_name", "text"),
    ("event_date", "date"),
    ("scraped_at", "timestamptz"),
)
_ARTIST_COLUMNS = (
    ("source", "text"),
    ("source_url", "text"),
    ("source_artist_id", "text"),
    ("scraper_version", "text"),
    ("raw_json", "jsonb"),
    ("artist_name", "text"),
    ("aliases", "text[]"),
    ("scraped_at", "timestamptz"),
)


def _key_default(value: Any) -> str:
    if isinstance(value, dt.datetime):
        # The same instant written "Z" or "+00:00" is the same field value.
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.isoformat()
    return str(value)  # date, UUID


def fields_hash(row: Mapping[str, Any], columns: Sequence[tuple[str, str]]) -> str:
    """sha256 of every stored field of ``row`` except raw_json, NULL-safe (a missing or None
    field is JSON null, never equal to any string); part of the bronze idempotency key."""
    values = [row.get(name) for name, _ in columns if name != "raw_json"]
    try:
        # orjson (C): a third of the standard encoder's cost on the bulk append path.
        doc = orjson.dumps(values, default=_key_default, option=orjson.OPT_PASSTHROUGH_DATETIME)
    except (orjson.JSONEncodeError, TypeError):  # lone surrogates, huge ints: refused later
        doc = json.dumps(values, default=_key_default).encode("ascii")
    return hashlib.sha256(doc).hexdigest()


def find_nul(value: Any, path: str) -> str | None:
    """Path of the first string (or mapping key) containing NUL inside ``value``, else None."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str) and "\x00" in key:
                return f"{path}.<key {key!r}>"
            found = find_nul(item, f"{path}.{key}")
            if found:
                return found
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = find_nul(item, f"{path}[{i}]")
            if found:
                return found
    return None


def _validate(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]]) -> None:
    required = (*_REQUIRED, *(("source_url",) if columns is not _ARTIST_COLUMNS else ()))
    if columns is not _TRACK_COLUMNS and columns is not _PLAYLIST_COLUMNS:
        required = (*required, "artist_name")
    known = {name for name, _ in columns}
    for i, row in enumerate(rows):
        missing = [c for c in required if row.get(c) is None]
        if missing:
            raise ValueError(f"row {i}: missing required field(s) {', '.join(missing)}")
        unknown = set(row) - known
        if unknown:
            raise ValueError(f"row {i}: unknown field(s) {', '.join(sorted(unknown))}")
        for name in known:
            value = row.get(name)
            # Fast path: strings directly, JSON through its serialisation (json.dumps escapes
            # NUL as \u0000); the recursive walk only runs to name the offending field.
            if value is None or (isinstance(value, str) and "\x00" not in value):
                continue
            if name == "raw_json" and "\\u0000" not in json.dumps(value):
                continue
            found = find_nul(value, name)
            if found:
                raise ValueError(
                    f"row {i}: field {found} contains a NUL character (\\u0000), which "
                    "PostgreSQL text/jsonb cannot store; strip it before ingesting"
                )


def _raw(conn: ConnectionLike) -> psycopg.Connection[Any]:
    if isinstance(conn, psycopg.Connection):
        return conn
    sa_conn = conn.connection() if isinstance(conn, Session) else conn
    driver = sa_conn.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    return driver


def _copy_direct(
    raw: psycopg.Connection[Any],
    table: str,
    columns: Sequence[tuple[str, str]],
    rows: Sequence[Mapping[str, Any]],
    ids: Sequence[uuid.UUID],
    keys: Sequence[str],
) -> bool:
    """Optimistic fast path: COPY straight into the table inside a savepoint.

    New data (the common case) then costs what a plain COPY costs. Any duplicate, in the batch or
    already in bronze, violates the idempotency key; the savepoint is rolled back and the caller
    takes the staging path, which skips duplicates row by row. Returns True when every row went in.
    """
    names = [name for name, _ in columns]
    json_at = names.index("raw_json")
    at = names.index("scraped_at")
    now = dt.datetime.now(dt.UTC)
    names.append("fields_hash")  # the column default, which COPY would not apply to a NULL
    # Plain SAVEPOINT statements, not psycopg's transaction(): on a connection with no statement
    # yet, transaction() would BEGIN and COMMIT on its own, outside the caller's unit of work.
    # A SAVEPOINT makes psycopg open the caller's transaction implicitly and stays inside it.
    copy_sql = f"COPY {table} (id, {', '.join(names)}) FROM STDIN"
    types = ["uuid", *("text" if kind == "jsonb" else kind for _, kind in columns), "text"]
    with raw.cursor() as cur:
        cur.execute("SAVEPOINT bronze_direct_copy")
        try:
            with cur.copy(copy_sql) as copy:
                copy.set_types(types)
                for row_id, row, key in zip(ids, rows, keys, strict=True):
                    values = [row.get(name) for name in names[:-1]]
                    values[json_at] = json.dumps(values[json_at], ensure_ascii=False)
                    if values[at] is None:
                        values[at] = now
                    copy.write_row([row_id, *values, key])
        except psycopg.errors.UniqueViolation:
            cur.execute("ROLLBACK TO SAVEPOINT bronze_direct_copy")
            cur.execute("RELEASE SAVEPOINT bronze_direct_copy")
            return False
        cur.execute("RELEASE SAVEPOINT bronze_direct_copy")
    return True


def _append(
    conn: ConnectionLike,
    table: str,
    columns: Sequence[tuple[str, str]],
    rows: Sequence[Mapping[str, Any]],
) -> list[uuid.UUID | None]:
    if not rows:
        return []
    _validate(rows, columns)
    raw = _raw(conn)
    stage = f"_stage_{table}"
    names = [name for name, _ in columns]
    ids = [uuid.uuid4() for _ in rows]
    keys = [fields_hash(row, columns) for row in rows]
    if _copy_direct(raw, table, columns, rows, ids, keys):
        return list(ids)
    with raw.cursor() as cur:
        # Temp table per session, emptied per call. CREATE TABLE AS copies the column types but
        # no NOT NULLs, so defaults (scraped_at) apply in the INSERT, not in the COPY.
        cur.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {stage} AS"
            f" SELECT 0::int AS ord, * FROM {table} WITH NO DATA"
        )
        cur.execute(f"TRUNCATE {stage}")
        with cur.copy(
            f"COPY {stage} (ord, id, {', '.join(names)}, fields_hash) FROM STDIN"
        ) as copy:
            # raw_json goes as JSON text: the server parses it into jsonb.
            copy.set_types(
                [
                    "int4",
                    "uuid",
                    *("text" if kind == "jsonb" else kind for _, kind in columns),
                    "text",
                ]
            )
            json_at = names.index("raw_json")
            for i, (row_id, row, key) in enumerate(zip(ids, rows, keys, strict=True)):
                values = [row.get(name) for name in names]
                values[json_at] = json.dumps(values[json_at], ensure_ascii=False)
                copy.write_row([i, row_id, *values, key])
        names.append("fields_hash")
        select = ", ".join(
            "coalesce(scraped_at, now())" if name == "scraped_at" else name for name in names
        )
        # ORDER BY ord: the first of several identical rows in a batch is the one kept.
        cur.execute(
            f"INSERT INTO {table} (id, {', '.join(names)}) SELECT id, {select} FROM {stage}"
            " ORDER BY ord ON CONFLICT DO NOTHING RETURNING id"
        )
        inserted = {r[0] for r in cur.fetchall()}
    return [row_id if row_id in inserted else None for row_id in ids]


def append_bronze_tracks(
    conn: ConnectionLike, rows: Sequence[Mapping[str, Any]]
) -> list[uuid.UUID | None]:
    """Append raw tracks; ids aligned with ``rows`` (None = duplicate, nothing inserted).

    Keys per row: source, source_url, scraper_version, raw_json (required); source_track_id,
    artist_name, track_title, playlist_id, position, scraped_at (optional).
    """
    return _append(conn, "bronze_scraped_tracks", _TRACK_COLUMNS, rows)


def append_bronze_playlists(
    conn: ConnectionLike, rows: Sequence[Mapping[str, Any]]
) -> list[uuid.UUID | None]:
    """Append raw playlists (create them before the tracks that reference them)."""
    return _append(conn, "bronze_scraped_playlists", _PLAYLIST_COLUMNS, rows)


def append_bronze_artists(
    conn: ConnectionLike, rows: Sequence[Mapping[str, Any]]
) -> list[uuid.UUID | None]:
    """Append raw artists (``artist_name`` required)."""
    return _append(conn, "bronze_scraped_artists", _ARTIST_COLUMNS, rows)


def append_api_enrichment(
    conn: ConnectionLike,
    *,
    api_provider: str,
    api_endpoint: str,
    raw_response: Any,
    response_status: int,
    bronze_track_id: uuid.UUID | None = None,
    api_version: str | None = None,
    request_params: Mapping[str, Any] | None = None,
) -> uuid.UUID:
    """Store one raw provider response (redact credentials before calling); return its id."""
    fields = {
        "api_provider": api_provider,
        "api_endpoint": api_endpoint,
        "api_version": api_version,
        "request_params": request_params,
        "raw_response": raw_response,
    }
    for name, value in fields.items():
        found = find_nul(value, name)
        if found:
            raise ValueError(f"field {found} contains a NUL character (\\u0000)")
    # A JSON scalar or list is stored as is; jsonb accepts any JSON value.
    json.dumps(raw_response)  # fail early (TypeError) on values JSON cannot represent
    row = (
        _raw(conn)
        .execute(
            "INSERT INTO bronze_api_enrichments (bronze_track_id, api_provider, api_endpoint,"
            " api_version, request_params, raw_response, response_status)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (
                bronze_track_id,
                api_provider,
                api_endpoint,
                api_version,
                Jsonb(dict(request_params)) if request_params is not None else None,
                Jsonb(raw_response),
                response_status,
            ),
        )
        .fetchone()
    )
    assert row is not None
    result: uuid.UUID = row[0]
    return result
