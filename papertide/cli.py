"""The ``papertide`` command.

Exit codes: 0 success; 1 the command ran but some records failed (each reported with its
position); 2 bad usage or configuration (message names the setting or argument); 3 nothing new
(an ingest that added and changed nothing); 4 the database is not ready (migrations pending).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from papertide import __version__
from papertide.config import Settings, load_settings
from papertide.db.engine import make_engine
from papertide.errors import ConfigError, InvalidInput, NotReady, PapertideError

EXIT_USAGE = 2
# Our handler formats uvicorn's records too (papertide.observability.logs); the access log is
# the request middleware's, one line per request.
LOGGING_OPTIONS: dict[str, Any] = {"log_config": None, "access_log": False}
# An idle keep-alive connection stays open longer than a proxy keeps its own (nginx: 60 s), so
# the proxy never sends a request down a connection uvicorn is closing: with uvicorn's default
# of 5 s that race dropped requests unanswered (bench/load.py, clients lagging under load).
KEEP_ALIVE_S = 65
# uvicorn kills (and replaces) a worker that does not answer its supervisor's ping in time,
# dropping the worker's requests; 5 s, its default, is too short on a busy machine (a worker
# was replaced mid-run by bench/load.py at load average 24 on 2 cores). Hung is longer.
WORKER_PING_S = 60
EXIT_NOT_READY = 4
err_console = Console(stderr=True)
out_console = Console()


class PapertideGroup(click.Group):
    """Turns Papertide errors into one-line messages and documented exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (ConfigError, InvalidInput) as exc:
            _fail(exc, EXIT_USAGE)
        except NotReady as exc:
            _fail(exc, EXIT_NOT_READY)
        except PapertideError as exc:
            _fail(exc, 1)


def _fail(exc: PapertideError, code: int) -> None:
    err_console.print(f"[red]error:[/red] {escape(exc.message)}", soft_wrap=True, highlight=False)
    sys.exit(code)


def settings_of(ctx: click.Context) -> Settings:
    settings = ctx.find_object(Settings)
    if settings is None:
        config_file = ctx.find_root().params.get("config_file")
        settings = load_settings(config_file=config_file)
        ctx.find_root().obj = settings
    return settings


@click.group(cls=PapertideGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="PAPERTIDE_CONFIG",
    help="TOML file with settings (a [papertide] table); environment variables win over it.",
)
@click.version_option(__version__, prog_name="papertide")
def cli(config_file: Path | None) -> None:
    """Papertide: daily research-paper lists for your community, on your own server."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


@cli.command()
@click.option("--host", default=None, help="Address to listen on (default: setting host).")
@click.option("--port", type=int, default=None, help="Port to listen on (default: setting port).")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Worker processes sharing the port; they share nothing but the database (one of "
    "them runs the scheduler).",
)
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None, workers: int) -> None:
    """Serve the web site (refuses to start while a migration is pending)."""
    import os

    import uvicorn

    from papertide.observability.logs import configure_logging
    from papertide.observability.metrics import prepare_multiprocess_dir, remove_multiprocess_dir
    from papertide.web.app import create_app

    settings = settings_of(ctx)
    if port is not None:
        settings = settings.replace(port=port)
    host = host or settings.host
    configure_logging(settings)  # each worker does the same (papertide.web.asgi)
    if workers == 1:
        app = create_app(settings)
        click.echo(f"Papertide serving on http://{host}:{settings.port}", err=True)
        uvicorn.run(
            app,
            host=host,
            port=settings.port,
            log_level=settings.log_level,
            timeout_keep_alive=KEEP_ALIVE_S,
            **proxy_options(settings),
            **LOGGING_OPTIONS,
        )
        return
    _require_schema(make_engine(settings.database_url))  # before any worker starts
    click.echo(f"Papertide serving on http://{host}:{settings.port}, {workers} workers", err=True)
    # Workers are fresh processes: they read the settings from the environment.
    config_file = ctx.find_root().params.get("config_file")
    if config_file:
        os.environ["PAPERTIDE_CONFIG"] = str(Path(config_file).resolve())
    os.environ["PAPERTIDE_PORT"] = str(settings.port)
    # Every worker writes its metrics into one folder, so a scrape on any of them sees all.
    metrics_dir, made = prepare_multiprocess_dir()
    try:
        uvicorn.run(
            "papertide.web.asgi:app",
            factory=True,
            workers=workers,
            timeout_worker_healthcheck=WORKER_PING_S,
            host=host,
            port=settings.port,
            log_level=settings.log_level,
            timeout_keep_alive=KEEP_ALIVE_S,
            **proxy_options(settings),
            **LOGGING_OPTIONS,
        )
    finally:
        remove_multiprocess_dir(metrics_dir, made)


def proxy_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's proxy-header options from ``trusted_proxies``: X-Forwarded-For and
    X-Forwarded-Proto are believed from those peers only (and ignored from any other)."""
    trusted = list(settings.trusted_proxies)
    return {"proxy_headers": bool(trusted), "forwarded_allow_ips": trusted or None}


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--format",
    "format_name",
    default=None,
    help="Input format (default: detected from each file's content). "
    "One of: kaggle, abs, arxiv-atom, oai-pmh, arxiv-rss, hf-jsonfeed, hf-api.",
)
@click.option("--quiet", is_flag=True, help="No progress bar; print only errors and the summary.")
@click.pass_context
def ingest(
    ctx: click.Context, paths: tuple[Path, ...], format_name: str | None, quiet: bool
) -> None:
    """Import papers from files or directories (walked recursively)."""
    from papertide.ingest.report import print_report
    from papertide.ingest.runner import IngestRun

    settings = settings_of(ctx)
    engine = make_engine(settings.database_url)
    _require_schema(engine)
    run = IngestRun(
        engine=engine,
        tz=ZoneInfo(settings.timezone),
        auto_follow=frozenset(settings.auto_follow_categories),
        format_name=format_name,
    )
    if not quiet:
        from papertide.ingest.progress import RichProgress

        run.progress = RichProgress(err_console)
    report = run.run(list(paths))
    print_report(report, err_console if quiet else out_console)
    _index_keywords(engine, settings, quiet)
    sys.exit(report.exit_code)


def _index_keywords(engine: Any, settings: Settings, quiet: bool) -> None:
    """Bring the keyword index up to date (SQLite: tantivy beside the file; PostgreSQL keeps
    its own ``tsvector`` in step, so nothing to do)."""
    from papertide.search.keyword_tantivy import TantivyIndex, index_dir_for

    folder = index_dir_for(settings.database_url, settings.search_index_dir)
    if folder is None or engine.dialect.name != "sqlite":
        return
    index = TantivyIndex(engine, folder)
    with _progress_bar("index", quiet) as advance:
        done = index.apply_changes(progress=advance, wait=True)
    if done and not quiet:
        click.echo(f"keyword index: {done:,} papers updated", err=True)


def _progress_bar(label: str, quiet: bool) -> Any:
    from papertide.ingest.progress import counting_bar

    return counting_bar(label, err_console, quiet=quiet)


@cli.group()
def fetch() -> None:
    """Fetch papers live from arXiv (polite: User-Agent, 3 s apart, Retry-After honoured)."""


def _run_live(ctx: click.Context, quiet: bool, action: Any) -> None:
    from papertide.ingest.live import LiveFetch
    from papertide.ingest.report import print_report

    settings = settings_of(ctx)
    engine = make_engine(settings.database_url)
    _require_schema(engine)
    live = LiveFetch(engine, settings)
    if not quiet:
        live.on_page = lambda r: err_console.print(
            f"page: new {r.new}, updated {r.updated}, unchanged {r.unchanged}", highlight=False
        )
    report = action(live)
    print_report(report, err_console if quiet else out_console)
    sys.exit(report.exit_code)


@fetch.command("arxiv")
@click.argument("query")
@click.option(
    "--max",
    "max_results",
    type=int,
    default=100,
    show_default=True,
    help="Stop after this many results.",
)
@click.option("--quiet", is_flag=True, help="Print only errors and the summary.")
@click.pass_context
def fetch_arxiv(ctx: click.Context, query: str, max_results: int, quiet: bool) -> None:
    """Run an arXiv API query, e.g. 'cat:cs.CL AND abs:diffusion', newest first."""
    _run_live(ctx, quiet, lambda live: live.query_arxiv(query, max_results))


@fetch.command("oai")
@click.option("--set", "set_spec", default=None, help="OAI set, e.g. cs or physics:hep-th.")
@click.option(
    "--from",
    "from_date",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="First datestamp (default: where the last complete harvest ended).",
)
@click.option(
    "--until", "until_date", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Last datestamp."
)
@click.option("--quiet", is_flag=True, help="Print only errors and the summary.")
@click.pass_context
def fetch_oai(
    ctx: click.Context, set_spec: str | None, from_date: Any, until_date: Any, quiet: bool
) -> None:
    """Harvest arXiv OAI-PMH ListRecords; a killed harvest resumes from its stored token."""
    _run_live(
        ctx,
        quiet,
        lambda live: live.harvest_oai(
            set_spec,
            from_date.date() if from_date else None,
            until_date.date() if until_date else None,
        ),
    )


@fetch.command("rss")
@click.argument("categories", nargs=-1, required=True)
@click.option("--quiet", is_flag=True, help="Print only errors and the summary.")
@click.pass_context
def fetch_rss(ctx: click.Context, categories: tuple[str, ...], quiet: bool) -> None:
    """Read today's arXiv announcements for CATEGORIES (e.g. cs.CL cs.LG)."""
    _run_live(ctx, quiet, lambda live: live.fetch_listing(list(categories)))


@cli.command()
@click.pass_context
def rank(ctx: click.Context) -> None:
    """Recompute the trending table."""
    from papertide.daily import compute_trending

    settings = settings_of(ctx)
    engine = make_engine(settings.database_url)
    _require_schema(engine)
    count = compute_trending(engine, settings)
    click.echo(f"trending: {count} papers ranked")


@cli.command()
@click.option("--quiet", is_flag=True, help="No progress bar; print only the summary.")
@click.option("--batch-size", default=32, show_default=True, help="Abstracts per model call.")
@click.option("--limit", type=int, default=None, help="Embed at most this many papers.")
@click.pass_context
def embed(ctx: click.Context, quiet: bool, batch_size: int, limit: int | None) -> None:
    """Embed every paper that lacks a vector, then exit (resumable: a rerun continues)."""
    from papertide.search.models import shared_embedder
    from papertide.search.pipeline import embed_missing
    from papertide.search.service import service_for
    from papertide.search.vectors import ensure_pg_index

    settings = settings_of(ctx)
    engine = make_engine(settings.database_url)
    _require_schema(engine)
    model = shared_embedder(
        settings.embedding_model, settings.embedding_precision, settings.embedding_threads
    )
    if not quiet:
        click.echo(f"model {model.name} ({model.precision}, {model.dim} dimensions)", err=True)
    with _progress_bar("embed", quiet) as advance:
        report = embed_missing(engine, model, batch_size=batch_size, limit=limit, progress=advance)
    if engine.dialect.name == "sqlite":
        service_for(engine, settings).vector_index(model).sync()
    else:
        with engine.begin() as connection:
            ensure_pg_index(connection, model.dim)
    click.echo(
        f"embedded {report.embedded:,} papers in {report.seconds:.1f} s "
        f"({report.rate:.1f} papers/s); {report.remaining:,} still without a vector"
    )


@cli.command()
@click.option("--rebuild", is_flag=True, help="Drop the indexes and build them afresh.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def index(ctx: click.Context, rebuild: bool, quiet: bool) -> None:
    """Bring the search indexes beside a SQLite database up to date (or rebuild them)."""
    from papertide.search.keyword_tantivy import TantivyIndex, index_dir_for
    from papertide.search.models import shared_embedder
    from papertide.search.service import service_for

    settings = settings_of(ctx)
    engine = make_engine(settings.database_url)
    _require_schema(engine)
    folder = index_dir_for(settings.database_url, settings.search_index_dir)
    if folder is None or engine.dialect.name != "sqlite":
        click.echo("PostgreSQL keeps its search indexes itself: nothing to do")
        return
    keyword = TantivyIndex(engine, folder)
    with _progress_bar("keyword index", quiet) as advance:
        if rebuild:
            done = keyword.rebuild(progress=advance)
        else:
            done = keyword.apply_changes(progress=advance, wait=True)
    click.echo(f"keyword index: {done:,} papers updated, {keyword.count():,} indexed")
    model = shared_embedder(
        settings.embedding_model, settings.embedding_precision, settings.embedding_threads
    )
    vectors = service_for(engine, settings).vector_index(model)
    with _progress_bar("vector index", quiet) as advance:
        added = vectors.rebuild(progress=advance) if rebuild else vectors.sync()
    click.echo(f"vector index ({vectors.kind}): {added:,} vectors added, {vectors.count:,} in all")


@cli.command()
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def demo(ctx: click.Context, quiet: bool) -> None:
    """Create the database if needed and load the bundled demo data (once)."""
    from papertide.demo_load import load_demo

    settings = settings_of(ctx)
    message = load_demo(settings, progress=not quiet, console=err_console)
    click.echo(message)
    engine = make_engine(settings.database_url)
    try:
        _index_keywords(engine, settings, quiet)
    finally:
        engine.dispose()


@cli.group()
def user() -> None:
    """Manage user accounts."""


@user.command("create")
@click.argument("username")
@click.option("--email", required=True, help="The account's email address.")
@click.option(
    "--password",
    envvar="PAPERTIDE_NEW_PASSWORD",
    help="Password (default: asked for, hidden). Also read from PAPERTIDE_NEW_PASSWORD.",
)
@click.option("--admin", "role", flag_value="admin", help="Make the account an administrator.")
@click.option("--moderator", "role", flag_value="moderator", help="Make it a moderator.")
@click.pass_context
def user_create(
    ctx: click.Context, username: str, email: str, password: str | None, role: str | None
) -> None:
    """Create an account, e.g. the first administrator: `papertide user create ada --admin`."""
    from papertide.accounts.users import Role, create_user
    from papertide.db.engine import write_transaction

    engine = make_engine(settings_of(ctx).database_url)
    _require_schema(engine)
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with write_transaction(engine) as connection:
        created = create_user(connection, username, email, str(password), role=Role(role or "user"))
    click.echo(f"created {created.role.value} {created.username} <{created.email}>")


@cli.group()
def config() -> None:
    """Inspect the settings."""


@config.command("dump")
@click.pass_context
def config_dump(ctx: click.Context) -> None:
    """Print the effective settings and where each came from (secrets hidden)."""
    table = Table("setting", "value", "source", box=None)
    for name, value, source in settings_of(ctx).dump():
        table.add_row(name, value, source)
    out_console.print(table)


def _require_schema(engine: Any) -> None:
    from papertide.db.migrate import require_current_schema

    require_current_schema(engine)


def _add_commands() -> None:
    from papertide.cli_db import db
    from papertide.cli_digest import digest

    cli.add_command(db)
    cli.add_command(digest)


_add_commands()


def main() -> None:
    cli(prog_name="papertide")
