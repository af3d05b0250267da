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


@db.command("copy")
@click.option(
    "--from",
    "source_url",
    metavar="URL",
    default=None,
    help="The database to copy (default: setting database_url). It may keep serving.",
)
@click.option(
    "--to",
    "target_url",
    metavar="URL",
    required=True,
    help="An empty database to copy into, e.g. postgresql://user:pass@host/papertide; a new "
    "SQLite file is created. It is migrated first.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(100, 1_000_000),
    default=5000,
    show_default=True,
    help="Rows read and written at a time.",
)
@click.option("--quiet", is_flag=True, help="No progress bars or table: the summary and errors.")
@click.pass_context
def db_copy(
    ctx: click.Context, source_url: str | None, target_url: str, batch_size: int, quiet: bool
) -> None:
    """Copy every row to another database (SQLite -> PostgreSQL, or back) and verify it.

    The source is read in one snapshot, so the copy is the database as it was when the copy
    started: writes made after that are not copied. To move a site: stop its web workers (or
    whatever writes), copy, set PAPERTIDE_DATABASE_URL to the new database, start again.
    Every table's rows and checksum are then compared; exit 1 on any mismatch, 2 when the
    target is not empty, 4 when the source has migrations pending.
    """
    from papertide.cli import err_console, out_console
    from papertide.db.copy import RichCopyProgress, copy_database, print_report

    source_url = source_url or settings_of(ctx).database_url
    if quiet:
        report = copy_database(source_url, target_url, batch_rows=batch_size)
    else:
        with RichCopyProgress(err_console) as progress:
            report = copy_database(source_url, target_url, batch_rows=batch_size, progress=progress)
    print_report(report, out_console, err_console, quiet)
    sys.exit(0 if report.ok else 1)
