"""Helpers shared by CLI commands: database preparation, consoles, progress bars."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pipeline.cli.db_cmds import resolve_url_verbose

__all__ = ["console", "follow", "make_progress", "prepare_database"]

console = Console(stderr=True)


def prepare_database(migrate: bool) -> str:
    """Resolve the database (embedded if needed) and apply migrations when asked."""
    import os

    from db.engine import dispose_engine

    url = resolve_url_verbose()
    if migrate:
        from db.migrate import upgrade

        upgrade(url)
    os.environ.setdefault("DATABASE_URL", url)  # workers started from here use the same one
    dispose_engine()
    return url


def make_progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def follow(
    progress: Progress,
    description: str,
    read: Callable[[], tuple[int, int, bool]],
    timeout_s: float,
) -> bool:
    """Drive a bar from ``read() -> (done, total, finished)`` until finished or timeout."""
    task = progress.add_task(description, total=None)
    deadline = time.monotonic() + timeout_s
    while True:
        done, total, finished = read()
        progress.update(task, completed=done, total=max(total, 1))
        if finished:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.3)
