"""``songnodes db upgrade|downgrade|url``: the medallion migrations through Alembic."""

from __future__ import annotations

import typer
from rich.console import Console

__all__ = ["app", "resolve_url_verbose"]

app = typer.Typer(help="Apply or roll back the medallion migrations.", no_args_is_help=True)
console = Console(stderr=True)


def resolve_url_verbose() -> str:
    """The database URL in use, telling the user when the embedded server is the one."""
    from db.engine import resolve_database_url
    from db.settings import database_url

    if database_url() is None:
        console.print("[dim]DATABASE_URL is not set: starting the embedded PostgreSQL...[/dim]")
    url = resolve_database_url()
    console.print(f"[dim]database: {_redact(url)}[/dim]")
    return url


def _redact(url: str) -> str:
    """Hide a password in a URL before printing it."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@app.command()
def upgrade(
    revision: str = typer.Argument("head", help="Alembic revision (default: head)."),
) -> None:
    """Apply migrations 001..N (same SQL files psql applies)."""
    from db.migrate import upgrade as do_upgrade

    url = resolve_url_verbose()
    do_upgrade(url, revision)
    console.print(f"[green]upgraded to {revision}[/green]")


@app.command()
def downgrade(
    revision: str = typer.Argument("base", help="Alembic revision (default: base = remove all)."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Roll migrations back in reverse order (base removes every table of ours)."""
    from db.migrate import downgrade as do_downgrade

    url = resolve_url_verbose()
    if revision == "base" and not yes:
        typer.confirm("This drops every SongNodes table and its data. Continue?", abort=True)
    do_downgrade(url, revision)
    console.print(f"[green]downgraded to {revision}[/green]")


@app.command()
def url() -> None:
    """Print the database URL the CLI would use (starts the embedded server if needed)."""
    typer.echo(_redact(resolve_url_verbose()))
