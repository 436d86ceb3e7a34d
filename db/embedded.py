"""A private PostgreSQL for running without ``DATABASE_URL`` (demo, laptop, CI without services).

Preferred: ``pgserver`` (bundles PostgreSQL binaries, handles running as root by dropping to a
system user). Fallback: ``initdb``/``pg_ctl`` from PATH or ``/usr/lib/postgresql/*/bin``, with a
unix socket inside the data directory and no TCP listener. ``initdb`` refuses to run as root, so
the fallback needs an unprivileged user; pgserver does not.

The data lives under ``$SONGNODES_HOME/pg`` or ``~/.local/state/songnodes/pg`` and survives
restarts; the server is left running (it is reused by the next call). Prints nothing.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import threading
import warnings
from pathlib import Path
from urllib.parse import quote

import psycopg

__all__ = ["EmbeddedDatabaseError", "data_dir", "ensure_embedded_database"]

DATABASE_NAME = "songnodes"
_lock = threading.Lock()
_cached_url: str | None = None


class EmbeddedDatabaseError(RuntimeError):
    """The embedded PostgreSQL could not be started."""


def data_dir() -> Path:
    """Where the embedded cluster lives."""
    home = os.environ.get("SONGNODES_HOME")
    base = Path(home) if home else Path.home() / ".local" / "state" / "songnodes"
    return base / "pg"


def ensure_embedded_database() -> str:
    """Start (or reuse) the embedded server, create ``songnodes`` in it, return its URL."""
    global _cached_url
    with _lock:
        if _cached_url is None:
            pgdata = data_dir()
            pgdata.parent.mkdir(parents=True, exist_ok=True)
            try:
                libpq_uri = _start_with_pgserver(pgdata)
            except ImportError:
                libpq_uri = _start_with_pg_ctl(pgdata)
            _create_database(libpq_uri, DATABASE_NAME)
            _cached_url = _to_sqlalchemy_url(libpq_uri, DATABASE_NAME)
        return _cached_url


def _start_with_pgserver(pgdata: Path) -> str:
    # pgserver's dependency platformdirs warns when XDG_RUNTIME_DIR is unset; harmless here and
    # fatal in test runs where warnings are errors.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

        server = pgserver.get_server(pgdata, cleanup_mode=None)
        return str(server.get_uri("postgres"))


def _find_binary(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    if candidates:
        return candidates[0]
    raise EmbeddedDatabaseError(f"{name} not found on PATH or in /usr/lib/postgresql/*/bin")


def _start_with_pg_ctl(pgdata: Path) -> str:
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        raise EmbeddedDatabaseError(
            "pgserver is not installed and initdb refuses to run as root; install pgserver "
            "or set DATABASE_URL"
        )
    initdb, pg_ctl = _find_binary("initdb"), _find_binary("pg_ctl")
    if not (pgdata / "PG_VERSION").exists():
        pgdata.mkdir(parents=True, exist_ok=True)
        _run([initdb, "-D", str(pgdata), "-U", "postgres", "--auth=trust", "-E", "UTF8"])
    status = subprocess.run([pg_ctl, "-D", str(pgdata), "status"], capture_output=True)
    if status.returncode != 0:
        # Socket only (listen_addresses=''): no port clashes, nothing reachable from outside.
        opts = f"-c listen_addresses='' -k {pgdata}"
        _run(
            [pg_ctl, "-D", str(pgdata), "-l", str(pgdata / "server.log"), "-o", opts, "-w", "start"]
        )
    return f"postgresql://postgres@/postgres?host={quote(str(pgdata))}"


def _run(cmd: list[str]) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise EmbeddedDatabaseError(f"{cmd[0]} failed: {result.stderr.strip()}")


def _create_database(libpq_uri: str, name: str) -> None:
    with psycopg.connect(libpq_uri, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def _to_sqlalchemy_url(libpq_uri: str, database: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(libpq_uri)
    user = quote(str(info.get("user") or "postgres"))
    host = str(info.get("host") or "")
    port = info.get("port")
    query = f"host={quote(host)}" + (f"&port={port}" if port else "")
    if host.startswith("/"):
        return f"postgresql+psycopg://{user}@/{database}?{query}"
    return f"postgresql+psycopg://{user}@{host}:{port or 5432}/{database}"
