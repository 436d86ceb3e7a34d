"""The ``songnodes`` command line: one typer app, one module per command group."""

from __future__ import annotations

import typer

from pipeline.cli import db_cmds

app = typer.Typer(
    name="songnodes",
    help="SongNodes medallion enrichment pipeline (bronze -> silver -> gold).",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(db_cmds.app, name="db")


def _register_optional_commands() -> None:
    """Attach commands whose modules import heavier dependencies (Celery, providers)."""
    import importlib

    pipeline_cmds = importlib.import_module("pipeline.cli.pipeline_cmds")

    pipeline_cmds.register(app)
    # issue #19: what-if simulation and suggestions of waterfall changes.
    waterfall_cmds = importlib.import_module("pipeline.cli.waterfall_cmds")
    app.add_typer(waterfall_cmds.app, name="waterfall")


def main() -> None:
    """Console-script entry point."""
    from providers._http import install_log_redaction

    install_log_redaction()  # every command, before anything logs: no credential in any line
    _register_optional_commands()
    app()


__all__ = ["app", "main"]
