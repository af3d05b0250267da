"""Digests as the site and the CLI use them: previews, and the scheduler's digest job.

A preview shows exactly what would be sent: the stored message when the period's outbox row
has already been composed, else the digest composed now by the same code the sender runs
(nothing is recorded). The scheduler's job plans and sends the latest due daily and weekly
periods once each (``job_runs``), and retries what waits for a retry.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage

from sqlalchemy import Connection, Engine, select

from papertide.config import Settings
from papertide.db.schema import outbox as outbox_table
from papertide.db.schema import subscriptions
from papertide.digest import outbox
from papertide.digest.edition import load_edition
from papertide.digest.periods import KINDS, Period, latest_due, send_moment
from papertide.digest.render import DigestRenderer, Rendered
from papertide.digest.selection import DigestContent, Selector
from papertide.digest.sender import DigestSender, EmbedderSource, SendReport
from papertide.digest.subscriptions import Subscription, from_row
from papertide.jobs import STALE_AFTER, record_run, run_done
from papertide.mail import Mailer


@dataclass(frozen=True)
class Preview:
    period: Period
    rendered: Rendered | None  # None: nothing would be sent (no new papers)
    stored: bool  # the message already composed for sending (exactly these bytes go out)
    content: DigestContent | None


def preview(
    connection: Connection,
    settings: Settings,
    subscription: Subscription,
    period: Period,
    embedder: EmbedderSource | None,
) -> Preview:
    raw = connection.execute(
        select(outbox_table.c.raw).where(
            outbox_table.c.subscription_id == subscription.id,
            outbox_table.c.period == period.key,
        )
    ).scalar()
    if raw:
        return Preview(period, _parts(outbox.unpack(raw) or b""), True, None)
    edition = load_edition(connection, period)
    selector = Selector(edition, timezone=settings.timezone, embedder=embedder)
    content = selector.select(connection, [subscription])[0]
    if content.empty:
        return Preview(period, None, False, content)
    return Preview(period, DigestRenderer(settings).parts(content), False, content)


def _parts(raw: bytes) -> Rendered:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    text_part = message.get_body(("plain",))
    html_part = message.get_body(("html",))
    return Rendered(
        str(message["Subject"]),
        text_part.get_content() if text_part is not None else "",
        html_part.get_content() if html_part is not None else "",
    )


def would_send(
    engine: Engine,
    settings: Settings,
    periods: list[Period],
    email: str | None,
    embedder: EmbedderSource | None,
    batch: int = 500,
) -> Iterator[tuple[Period, Subscription, Rendered | None, DigestContent]]:
    """What a send of ``periods`` would deliver to whom (``--dry-run``): composed, not stored.
    Subscribers whose digest for a period is already out are left out."""
    renderer = DigestRenderer(settings)
    with engine.connect() as connection:
        for period in periods:
            selector = Selector(
                load_edition(connection, period), timezone=settings.timezone, embedder=embedder
            )
            done = select(outbox_table.c.subscription_id).where(
                outbox_table.c.period == period.key,
                outbox_table.c.status.in_(("sent", "skipped", "failed")),
            )
            rows = connection.execute(
                select(subscriptions)
                .where(
                    *outbox.active_subscribers(period.kind, email), subscriptions.c.id.not_in(done)
                )
                .order_by(subscriptions.c.id)
            ).all()
            subs = [from_row(row) for row in rows]
            for start in range(0, len(subs), batch):
                for content in selector.select(connection, subs[start : start + batch]):
                    rendered = None if content.empty else renderer.parts(content)
                    yield period, content.subscription, rendered, content


def due_periods(connection: Connection, settings: Settings, now: datetime) -> list[Period]:
    """The latest due period of each kind, unless done already or stale."""
    found = []
    for kind in KINDS:
        period = latest_due(kind, now, settings)
        if now - send_moment(period, settings) > STALE_AFTER:
            continue
        if not run_done(connection, "digest", period.key):
            found.append(period)
    return found


def digest_job(
    engine: Engine,
    settings: Settings,
    mailer: Callable[[], Mailer],
    embedder: EmbedderSource | None,
) -> Callable[[datetime], None]:
    """The scheduler's job: send due periods once, and retries when their time comes."""

    def run(now: datetime) -> None:
        with engine.connect() as connection:
            periods = due_periods(connection, settings, now)
            retries = outbox.count_due(connection, now)
        if not periods and not retries:
            return
        for period in periods:
            record_run(engine, "digest", period.key, "running")
        report = DigestSender(engine, settings, mailer(), embedder=embedder, now=now).run(periods)
        for period in periods:
            status = "failed" if report.error else "done"
            record_run(engine, "digest", period.key, status, summary(report))

    return run


def summary(report: SendReport) -> str:
    text = (
        f"planned {report.planned}, sent {report.sent}, skipped {report.skipped}, "
        f"waiting for a retry {report.deferred}, failed {report.failed}, "
        f"resent after an interruption {report.resent}"
    )
    if report.stopped:
        text += f", subscriptions stopped for bouncing {report.stopped}"
    if report.error:
        text += f"; stopped early: {report.error}"
    return text
