"""Sending a period's digests: plan the outbox rows, compose, deliver, mark.

One sender at a time (the ``digest-send`` :class:`~papertide.jobs.JobLock`), so a row found in
*sending* belongs to a sender that died: it is sent again, same bytes, same ``Message-ID``.
Rows are composed a batch at a time in one transaction (their bytes stored: *ready*), then
each is committed as *sending*, handed to SMTP, and committed as *sent*; the window in which a
kill leaves an outcome unknown is one message wide. After a permanent refusal (5xx) the row
fails and the subscription's bounce count grows (at ``digest_bounce_limit`` it stops); after a
temporary one the row waits (outbox backoff) and, when the server itself is unreachable, the
run stops rather than spend every row's attempts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, select

from papertide.config import Settings
from papertide.db.engine import write_transaction
from papertide.db.schema import subscriptions
from papertide.digest import outbox
from papertide.digest.edition import load_edition
from papertide.digest.outbox import Row, Status
from papertide.digest.periods import Period, parse_period
from papertide.digest.render import DigestRenderer
from papertide.digest.selection import DigestContent, Selector
from papertide.digest.subscriptions import (
    Subscription,
    from_row,
    record_bounce,
    record_delivery,
)
from papertide.jobs import JobLock
from papertide.mail import Mailer, PermanentMailError, TransientMailError, envelope_address
from papertide.personal.marks import Mark, mark_for
from papertide.search.embedder import Embedder

log = logging.getLogger("papertide.digest")

BATCH = 200
EmbedderSource = Callable[[], Embedder]


@dataclass
class SendReport:
    planned: int = 0
    composed: int = 0
    sent: int = 0
    skipped: int = 0  # nothing new for the subscriber, or they left before it went out
    failed: int = 0  # refused for good, or out of attempts
    deferred: int = 0  # temporary error: retried later
    resent: int = 0  # sent again after an interrupted run (same Message-ID)
    stopped: int = 0  # subscriptions that reached the bounce limit
    error: str | None = None  # why the run stopped early
    compose_s: float = 0.0
    deliver_s: float = 0.0
    periods: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.error is None and self.deferred == 0 and self.failed == 0


class _PeriodWork:
    """A period's edition, selector and renderer, made on first use in a run."""

    def __init__(self, connection: Connection, period: Period, sender: DigestSender) -> None:
        self.edition = load_edition(connection, period)
        self.selector = Selector(
            self.edition,
            timezone=sender.settings.timezone,
            embedder=sender.embedder,
            now=sender.now,
        )
        self.renderer = DigestRenderer(sender.settings)


class DigestSender:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        mailer: Mailer,
        *,
        embedder: EmbedderSource | None = None,
        now: datetime | None = None,
        batch_size: int = BATCH,
        progress: Callable[[int], None] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.mailer = mailer
        self.embedder = embedder
        self.now = now or datetime.now(UTC)
        self.batch_size = batch_size
        self.progress = progress
        self.stop = stop or threading.Event()
        self.envelope_from = envelope_address(settings.mail_from)
        self._work: dict[str, _PeriodWork] = {}
        self.report = SendReport()

    def run(
        self,
        periods: list[Period] | None = None,
        *,
        only_period: str | None = None,
        email: str | None = None,
        lock_wait: float = 0.0,
    ) -> SendReport:
        """Plan ``periods`` and send every due row (of ``only_period`` / ``email`` if given)."""
        lock = JobLock(self.engine, "digest-send")
        if not lock.acquire(lock_wait):
            self.report.error = "another process is sending digests; try again later"
            return self.report
        try:
            for period in periods or []:
                with write_transaction(self.engine) as connection:
                    self.report.planned += outbox.plan(
                        connection, self.settings, period, email=email, now=self.now
                    )
                self.report.periods.append(period.key)
            self._send_all(only_period, email)
        finally:
            lock.release()
            self.mailer.close()
        return self.report

    def _send_all(self, only_period: str | None, email: str | None) -> None:
        while not self.stop.is_set() and self.report.error is None:
            with self.engine.connect() as connection:
                rows = outbox.due(
                    connection, self.now, self.batch_size, period=only_period, email=email
                )
                if not rows:
                    return
                subs = self._subscriptions(connection, [r.subscription_id for r in rows])
            rows = self._compose(rows, subs)
            started = False  # whether rows[i] was committed as sending with rows[i - 1]'s mark
            for i, row in enumerate(rows):
                if self.stop.is_set() or self.report.error is not None:
                    return
                following = rows[i + 1] if i + 1 < len(rows) else None
                started = self._deliver(row, subs[row.subscription_id], started, following)

    @staticmethod
    def _subscriptions(connection: Connection, ids: list[int]) -> dict[int, Subscription]:
        found = connection.execute(select(subscriptions).where(subscriptions.c.id.in_(ids)))
        return {row.id: from_row(row) for row in found}

    def _compose(self, rows: list[Row], subs: dict[int, Subscription]) -> list[Row]:
        """Store the bytes of the batch's pending rows; the rows to deliver, in order."""
        started = time.perf_counter()
        gone = [r.id for r in rows if not subs[r.subscription_id].active]
        live = [r for r in rows if subs[r.subscription_id].active]
        pending = [r for r in live if r.status == Status.PENDING.value]
        composed: dict[int, Row] = {}
        empty: list[int] = []
        lost: list[int] = []
        with write_transaction(self.engine) as connection:
            outbox.skip(connection, gone, "the subscription stopped before it went out")
            for period_key in dict.fromkeys(r.period for r in pending):
                work = self._period_work(connection, period_key)
                batch = [r for r in pending if r.period == period_key]
                contents = work.selector.select(
                    connection, [subs[r.subscription_id] for r in batch]
                )
                for row, content in zip(batch, contents, strict=True):
                    if content.empty:
                        empty.append(row.id)
                        continue
                    raw = work.renderer.message(content, row.message_id, self.now)
                    if outbox.store_composed(connection, row.id, raw, content.paper_ids):
                        composed[row.id] = _ready(row, raw, content)
                    else:
                        lost.append(row.id)  # read again, with its stored bytes, next round
            outbox.skip(connection, empty, "no new papers for this subscriber")
        self.report.skipped += len(gone) + len(empty)
        self.report.composed += len(composed)
        self.report.compose_s += time.perf_counter() - started
        if self.progress and (gone or empty):
            self.progress(len(gone) + len(empty))
        dropped = set(empty) | set(lost)
        return [composed.get(r.id, r) for r in live if r.id not in dropped]

    def _period_work(self, connection: Connection, key: str) -> _PeriodWork:
        work = self._work.get(key)
        if work is None:
            work = self._work[key] = _PeriodWork(connection, parse_period(key), self)
        return work

    def _deliver(self, row: Row, sub: Subscription, started: bool, following: Row | None) -> bool:
        """Hand one row to SMTP and record the outcome; whether ``following`` was committed as
        sending in the same transaction as this row's success (one commit per message)."""
        assert row.raw is not None
        began = time.perf_counter()
        if not started:
            with write_transaction(self.engine) as connection:
                outbox.start_sending(connection, row)
        if row.status == Status.SENDING.value:
            self.report.resent += 1
        next_started = False
        try:
            self.mailer.deliver(self.envelope_from, sub.email, row.raw)
        except PermanentMailError as error:
            with write_transaction(self.engine) as connection:
                outbox.mark_failed(connection, row.id, str(error))
                limit = self.settings.digest_bounce_limit
                if record_bounce(connection, sub.id, str(error), limit, datetime.now(UTC)):
                    self.report.stopped += 1
            self.report.failed += 1
            log.warning("digest refused for good: %s", error, extra={"outbox_id": row.id})
        except TransientMailError as error:
            attempts = row.attempts + 1
            with write_transaction(self.engine) as connection:
                if attempts >= self.settings.digest_max_attempts:
                    outbox.mark_failed(connection, row.id, f"gave up after {attempts}: {error}")
                    self.report.failed += 1
                else:
                    outbox.defer(connection, row.id, attempts, str(error), self.now)
                    self.report.deferred += 1
            if error.connection:
                self.report.error = f"the mail server is unavailable: {error}"
        else:
            with write_transaction(self.engine) as connection:
                outbox.mark_sent(connection, row.id, datetime.now(UTC))
                if sub.bounces:
                    record_delivery(connection, sub.id)
                if sub.user_id is not None and row.paper_ids:
                    mark_for(connection, sub.user_id, row.paper_ids, Mark.SEEN, "digest")
                if following is not None and not self.stop.is_set():
                    outbox.start_sending(connection, following)
                    next_started = True
            self.report.sent += 1
        self.report.deliver_s += time.perf_counter() - began
        if self.progress:
            self.progress(1)
        return next_started


def _ready(row: Row, raw: bytes, content: DigestContent) -> Row:
    return Row(
        row.id,
        row.subscription_id,
        row.period,
        Status.READY.value,
        row.message_id,
        row.attempts,
        raw,
        content.paper_ids,
    )


def open_rows(engine: Engine, now: datetime, period: str | None = None) -> int:
    """How many rows are due now (a progress bar's total)."""
    with engine.connect() as connection:
        return outbox.count_due(connection, now, period=period)
