"""``papertide db``: migrations and the database's state."""

from __future__ import annotations

import sys

import click

from papertide.cli import EXIT_NOT_READY, settings_of
from papertide.db.engine import make_engine
from papertide.db.migrate import migrate, migration_status


@click.group()
def db() -> None:
    """Database migrations and state."""


@db.command("migrate")
@click.pass_context
def db_migrate(ctx: click.Context) -> None:
    """Apply every pending migration."""
    engine = make_engine(settings_of(ctx).database_url)
    before = migration_status(engine)
    status = migrate(engine)
    if before.pending:
        for line in before.pending:
            click.echo(f"applied {line}")
    click.echo(f"database at revision {status.current} (head {status.head})")


@db.command("status")
@click.pass_context
def db_status(ctx: click.Context) -> None:
    """Show the current revision and pending migrations (exit 4 when some are pending)."""
    status = migration_status(make_engine(settings_of(ctx).database_url))
    click.echo(f"current revision: {status.current or 'none (empty database)'}")
    click.echo(f"head revision:    {status.head}")
    if status.pending:
        click.echo("pending:")
        for line in status.pending:
            click.echo(f"  {line}")
        sys.exit(EXIT_NOT_READY)
    click.echo("up to date")
