"""The outbox: one row per (subscription, period), unique in the database.

A row's life: **pending** (planned; its ``Message-ID`` is fixed now) -> **ready** (composed: the
message bytes and the papers it holds are stored, so every later attempt sends the very same
message) -> **sending** (committed just before the message is handed to SMTP) -> **sent**; or
**skipped** (nothing new for this subscriber, or they left before it went out) or **failed**
(refused for good, or out of attempts). A temporary SMTP error puts the row back to ready with
``next_attempt_at`` later (:data:`BACKOFF_S`).

Exactly once: a sender that dies leaves at most one row in *sending* (the one message on the
wire, whose fate is unknown); the next run sends that row again with the same bytes and
``Message-ID`` (mail clients drop the repeat) and counts it in ``resends``. Every other row is
either sent and marked, or not yet handed over.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import (
    JSON,
    ColumnElement,
    Connection,
    Integer,
    bindparam,
    func,
    insert,
    select,
    update,
)

from papertide.config import Settings
from papertide.db.column_types import UTCDateTime
from papertide.db.schema import outbox, subscriptions
from papertide.digest.periods import Period
from papertide.digest.render import new_message_id

BACKOFF_S = (60, 300, 900, 1800, 3600)
# Messages in flight are stored zlib-compressed (a 22 kB digest takes about 6 kB).
_LEVEL = 1
PLAN_CHUNK = 5000


class Status(StrEnum):
    PENDING = "pending"
    READY = "ready"
    SENDING = "sending"
    SENT = "sent"
    SKIPPED = "skipped"
    FAILED = "failed"


OPEN = (Status.PENDING.value, Status.READY.value, Status.SENDING.value)


@dataclass(frozen=True, slots=True)
class Row:
    id: int
    subscription_id: int
    period: str
    status: str
    message_id: str
    attempts: int
    raw: bytes | None
    paper_ids: list[int] | None


def active_subscribers(
    kind: str | None = None, email: str | None = None
) -> list[ColumnElement[bool]]:
    """Conditions for subscriptions that get mail (confirmed, subscribed, not bouncing)."""
    conditions: list[ColumnElement[bool]] = [
        subscriptions.c.confirmed_at.is_not(None),
        subscriptions.c.unsubscribed_at.is_(None),
        subscriptions.c.bouncing_at.is_(None),
    ]
    if kind is not None:
        conditions.append(subscriptions.c.frequency == kind)
    if email is not None:
        conditions.append(subscriptions.c.email == email.strip().lower())
    return conditions


def plan(
    connection: Connection,
    settings: Settings,
    period: Period,
    *,
    email: str | None = None,
    now: datetime | None = None,
) -> int:
    """Create the period's missing rows (one per active subscriber of its kind); how many."""
    now = now or datetime.now(UTC)
    planned = select(outbox.c.subscription_id).where(outbox.c.period == period.key)
    wanted = connection.execute(
        select(subscriptions.c.id)
        .where(*active_subscribers(period.kind, email), subscriptions.c.id.not_in(planned))
        .order_by(subscriptions.c.id)
    ).scalars()
    ids = list(wanted)
    for start in range(0, len(ids), PLAN_CHUNK):
        connection.execute(
            insert(outbox),
            [
                {
                    "subscription_id": sub_id,
                    "period": period.key,
                    "status": Status.PENDING.value,
                    "message_id": new_message_id(settings, period.key, sub_id),
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for sub_id in ids[start : start + PLAN_CHUNK]
            ],
        )
    return len(ids)


def due(
    connection: Connection,
    now: datetime,
    limit: int,
    *,
    period: str | None = None,
    email: str | None = None,
) -> list[Row]:
    """Open rows whose time has come: interrupted ones first, then composed ones, then pending
    ones, each in order of creation (one index range per status, no sort)."""
    found: list[Row] = []
    for status in (Status.SENDING.value, Status.READY.value, Status.PENDING.value):
        if len(found) >= limit:
            break
        statement = (
            select(
                outbox.c.id,
                outbox.c.subscription_id,
                outbox.c.period,
                outbox.c.status,
                outbox.c.message_id,
                outbox.c.attempts,
                outbox.c.raw,
                outbox.c.paper_ids,
            )
            .where(outbox.c.status == status, outbox.c.next_attempt_at <= now)
            .order_by(outbox.c.id)
            .limit(limit - len(found))
        )
        if period is not None:
            statement = statement.where(outbox.c.period == period)
        if email is not None:
            statement = statement.join(
                subscriptions, subscriptions.c.id == outbox.c.subscription_id
            ).where(subscriptions.c.email == email.strip().lower())
        found.extend(
            Row(
                r.id,
                r.subscription_id,
                r.period,
                r.status,
                r.message_id,
                r.attempts,
                unpack(r.raw),
                r.paper_ids,
            )
            for r in connection.execute(statement)
        )
    return found


def pack(raw: bytes) -> bytes:
    return zlib.compress(raw, _LEVEL)


def unpack(stored: bytes | None) -> bytes | None:
    return None if stored is None else zlib.decompress(stored)


def count_due(connection: Connection, now: datetime, *, period: str | None = None) -> int:
    statement = select(func.count()).where(
        outbox.c.status.in_(OPEN), outbox.c.next_attempt_at <= now
    )
    if period is not None:
        statement = statement.where(outbox.c.period == period)
    return int(connection.execute(statement).scalar_one())


# The per-message statements, built once (building one costs more than running it).
_STORE = (
    update(outbox)
    .where(outbox.c.id == bindparam("row_id"), outbox.c.status == Status.PENDING.value)
    .values(
        status=Status.READY.value,
        raw=bindparam("packed"),
        paper_ids=bindparam("papers", type_=JSON),
    )
)
_START = (
    update(outbox)
    .where(outbox.c.id == bindparam("row_id"))
    .values(
        status=Status.SENDING.value,
        attempts=outbox.c.attempts + 1,
        resends=outbox.c.resends + bindparam("resent", type_=Integer),
    )
)
_SENT = (
    update(outbox)
    .where(outbox.c.id == bindparam("row_id"))
    .values(
        status=Status.SENT.value,
        sent_at=bindparam("at", type_=UTCDateTime()),
        raw=None,
        last_error=None,
    )
)


def store_composed(connection: Connection, row_id: int, raw: bytes, paper_ids: list[int]) -> bool:
    """Store a pending row's message; False when the row was no longer pending (another
    sender got there first: only what is stored may ever be sent)."""
    stored = connection.execute(
        _STORE, {"row_id": row_id, "packed": pack(raw), "papers": paper_ids}
    )
    return stored.rowcount == 1


def skip(connection: Connection, row_ids: Iterable[int], reason: str) -> None:
    ids = list(row_ids)
    if ids:
        connection.execute(
            update(outbox)
            .where(outbox.c.id.in_(ids), outbox.c.status.in_(OPEN))
            .values(status=Status.SKIPPED.value, last_error=reason, raw=None)
        )


def start_sending(connection: Connection, row: Row) -> None:
    """Committed before the bytes go to SMTP: from here on the outcome may be unknown."""
    resent = 1 if row.status == Status.SENDING.value else 0
    connection.execute(_START, {"row_id": row.id, "resent": resent})


def mark_sent(connection: Connection, row_id: int, now: datetime) -> None:
    connection.execute(_SENT, {"row_id": row_id, "at": now})


def mark_failed(connection: Connection, row_id: int, error: str) -> None:
    connection.execute(
        update(outbox)
        .where(outbox.c.id == row_id)
        .values(status=Status.FAILED.value, last_error=error[:1000], raw=None)
    )


def defer(connection: Connection, row_id: int, attempts: int, error: str, now: datetime) -> None:
    """Back to ready after a temporary error, due again after the backoff for ``attempts``."""
    wait = BACKOFF_S[min(attempts, len(BACKOFF_S)) - 1] if attempts else BACKOFF_S[0]
    connection.execute(
        update(outbox)
        .where(outbox.c.id == row_id)
        .values(
            status=Status.READY.value,
            last_error=error[:1000],
            next_attempt_at=now + timedelta(seconds=wait),
        )
    )


def counts(connection: Connection, period: str | None = None) -> dict[str, int]:
    """Rows per status (and ``resends``, the repeats after interruptions)."""
    statement = select(outbox.c.status, func.count(), func.coalesce(func.sum(outbox.c.resends), 0))
    if period is not None:
        statement = statement.where(outbox.c.period == period)
    found = {s.value: 0 for s in Status}
    resends = 0
    for status, count, resent in connection.execute(statement.group_by(outbox.c.status)):
        found[status] = count
        resends += int(resent)
    found["resends"] = resends
    return found


def message_ids(connection: Connection, period: str) -> dict[int, str]:
    """subscription id -> Message-ID of the period's rows."""
    return dict(
        connection.execute(
            select(outbox.c.subscription_id, outbox.c.message_id).where(outbox.c.period == period)
        ).all()
    )
