"""Database settings read from the environment (no I/O, no side effects)."""

from __future__ import annotations

import os

__all__ = ["database_url", "normalise_url"]

_DRIVER = "postgresql+psycopg://"


def normalise_url(url: str) -> str:
    """Rewrite ``postgres://`` / ``postgresql://`` to the psycopg 3 SQLAlchemy dialect."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return _DRIVER + url[len(prefix) :]
    return url


def database_url() -> str | None:
    """``DATABASE_URL`` in SQLAlchemy form, or None when unset or blank."""
    raw = os.environ.get("DATABASE_URL", "").strip()
    return normalise_url(raw) if raw else None
