"""``papertide digest``: send, preview and inspect the email digests.

``digest send`` exits 0 when every due digest went out (or was skipped: nothing new for that
subscriber), 1 when some wait for a retry, failed, or the mail server was unreachable, 3 when
there was nothing to send.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any

import click
from rich.table import Table
from sqlalchemy import Engine, select

from papertide.config import Settings
from papertide.db.engine import make_engine
from papertide.digest.periods import Period, resolve
from papertide.errors import InvalidInput, NotFound

EXIT_NOTHING = 3


def _setup(ctx: click.Context) -> tuple[Settings, Engine]:
    from papertide.cli import _require_schema, settings_of

    settings = settings_of(ctx)
    engine = make_engine(settings.database_url)
    _require_schema(engine)
    return settings, engine


def _embedder(settings: Settings) -> Any:
    from papertide.search.models import model_key, shared_embedder

    return lambda: shared_embedder(*model_key(settings, serving=False))


@click.group()
def digest() -> None:
    """Email digests: send them, preview one, see the outbox."""


@digest.command("send")
@click.option(
    "--period",
    "periods",
    multiple=True,
    help="`daily` or `weekly` (the latest due one), or a key such as daily:2026-11-30 or "
    "weekly:2026-W48; repeatable. Default: the latest due daily and weekly periods not sent "
    "yet, plus retries that are due.",
)
@click.option("--email", default=None, help="Only this subscriber (who must be subscribed).")
@click.option("--dry-run", is_flag=True, help="Compose and list what would be sent; send nothing.")
@click.option("--quiet", is_flag=True, help="No progress bar; print only the summary.")
@click.option(
    "--wait", type=float, default=0.0, help="Seconds to wait for another sender to finish."
)
@click.pass_context
def send(
    ctx: click.Context,
    periods: tuple[str, ...],
    email: str | None,
    dry_run: bool,
    quiet: bool,
    wait: float,
) -> None:
    """Plan and send digests through the configured mailer, exactly once per period."""
    from papertide.cli import _progress_bar, err_console
    from papertide.digest.sender import DigestSender, open_rows
    from papertide.digest.service import due_periods, summary
    from papertide.jobs import record_run
    from papertide.mail import make_mailer

    settings, engine = _setup(ctx)
    now = datetime.now(UTC)
    chosen = _periods(engine, settings, periods, now, due_periods)
    if email is not None:
        _check_subscriber(engine, email)
    if dry_run:
        _dry_run(engine, settings, chosen, email)
        return
    done = [0]
    with _progress_bar("digest", quiet) as advance:
        sender = DigestSender(
            engine,
            settings,
            make_mailer(settings),
            embedder=_embedder(settings),
            now=now,
        )
        total = [0]

        def progress(count: int) -> None:
            done[0] += count
            if not total[0]:
                total[0] = open_rows(engine, now) + done[0]
            advance(done[0], total[0])

        sender.progress = progress
        only = chosen[0].key if len(chosen) == 1 and periods else None
        report = sender.run(chosen, only_period=only, email=email, lock_wait=wait)
    if report.error is None and email is None:
        for period in chosen:
            record_run(engine, "digest", period.key, "done", summary(report))
    err_console.print(summary(report), highlight=False, soft_wrap=True)
    if report.sent + report.skipped + report.failed + report.deferred == 0 and not report.error:
        sys.exit(EXIT_NOTHING)
    sys.exit(0 if report.complete else 1)


def _periods(
    engine: Engine, settings: Settings, names: tuple[str, ...], now: datetime, due: Any
) -> list[Period]:
    if names:
        return [resolve(name, now, settings) for name in names]
    with engine.connect() as connection:
        found: list[Period] = due(connection, settings, now)
    return found


def _check_subscriber(engine: Engine, email: str) -> None:
    from papertide.digest.subscriptions import by_email

    with engine.connect() as connection:
        found = by_email(connection, email)
    if found is None:
        raise NotFound(f"no subscription for {email}")
    if not found.active:
        raise InvalidInput(f"{email} gets no digests: the subscription is {found.state.value}")


def _dry_run(engine: Engine, settings: Settings, periods: list[Period], email: str | None) -> None:
    from papertide.cli import out_console
    from papertide.digest.service import would_send

    table = Table("period", "email", "trending", "for you", "subject")
    count = empty = 0
    for period, sub, rendered, content in would_send(
        engine, settings, periods, email, _embedder(settings)
    ):
        if rendered is None:
            empty += 1
            continue
        count += 1
        if count <= 50:
            table.add_row(
                period.key,
                sub.email,
                str(len(content.trending)),
                str(len(content.picks)),
                rendered.subject,
            )
    out_console.print(table)
    out_console.print(
        f"dry run: {count:,} digests would be sent, {empty:,} subscribers have nothing new"
        + (" (first 50 listed)" if count > 50 else ""),
        highlight=False,
    )


@digest.command("preview")
@click.option("--email", required=True, help="The subscriber whose digest to show.")
@click.option(
    "--period",
    default=None,
    help="`daily`, `weekly` or a period key (default: the subscriber's latest due period).",
)
@click.option(
    "--format",
    "shape",
    type=click.Choice(["text", "html"]),
    default="text",
    show_default=True,
    help="Which part of the message to print.",
)
@click.pass_context
def preview_command(ctx: click.Context, email: str, period: str | None, shape: str) -> None:
    """Print the digest a subscriber would get (records nothing)."""
    from papertide.cli import err_console
    from papertide.digest.service import preview
    from papertide.digest.subscriptions import by_email

    settings, engine = _setup(ctx)
    with engine.connect() as connection:
        sub = by_email(connection, email)
        if sub is None:
            raise NotFound(f"no subscription for {email}")
        chosen = resolve(period or sub.frequency, datetime.now(UTC), settings)
        shown = preview(connection, settings, sub, chosen, _embedder(settings))
    if shown.rendered is None:
        err_console.print(f"nothing would be sent to {email} for {chosen.key}: no new papers")
        sys.exit(EXIT_NOTHING)
    if shown.stored:
        err_console.print(f"{chosen.key}: the message already composed for sending")
    click.echo(f"Subject: {shown.rendered.subject}\n")
    click.echo(shown.rendered.text if shape == "text" else shown.rendered.html)


@digest.command("status")
@click.option("--period", default=None, help="Only this period key.")
@click.pass_context
def status(ctx: click.Context, period: str | None) -> None:
    """Subscriptions by state and outbox rows by status."""
    from papertide.cli import out_console
    from papertide.db.schema import subscriptions
    from papertide.digest.outbox import counts
    from papertide.digest.subscriptions import from_row

    _, engine = _setup(ctx)
    with engine.connect() as connection:
        states: dict[str, int] = {}
        for row in connection.execute(select(subscriptions)):
            state = from_row(row).state.value
            states[state] = states.get(state, 0) + 1
        rows = counts(connection, period)
    table = Table("what", "count")
    for state, count in sorted(states.items()):
        table.add_row(f"subscriptions {state}", f"{count:,}")
    for name, count in rows.items():
        table.add_row(f"outbox {name}", f"{count:,}")
    out_console.print(table)
    if not states:
        out_console.print("no subscriptions yet")
