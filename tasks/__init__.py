"""Celery tasks of the SongNodes pipeline. ``celery -A tasks worker|beat|flower`` finds ``app``."""

from tasks.app import app

__all__ = ["app"]
