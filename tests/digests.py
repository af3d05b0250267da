"""Helpers for the digest tests: a catalog with lists in a known period, and subscribers."""

from __future__ import annotations

from datetime import UTC, date, datetime

from factories import listed, make_record, write_records
from smtp import SmtpSink
from sqlalchemy import Engine

from papertide.config import Settings
from papertide.db.engine import write_transaction
from papertide.digest import subscriptions as subs
from papertide.digest.periods import Period, daily_period, weekly_period

# Tuesday 24 November 2026's daily digest holds Monday 23's list; week 48 is 23-29 November.
MONDAY = date(2026, 11, 23)
TUESDAY_DIGEST: Period = daily_period(date(2026, 11, 24))
WEEK_48: Period = weekly_period(2026, 48)
SECRET = "digest-tests-secret"


def add_lists(engine: Engine, count: int = 12, day: date = MONDAY, first: int = 100) -> list[str]:
    """``count`` papers on ``day``'s list, upvotes descending (paper i has 10 * (count - i)):
    titles with non-ASCII and math, one in cs.CV (the others cs.CL), every third with code."""
    records = []
    ids = []
    for i in range(count):
        arxiv_id = f"2611.{first + i:05d}"
        ids.append(arxiv_id)
        records.append(
            make_record(
                arxiv_id,
                title=f"Paper {i}: Schrödinger bridges for $\\alpha$-divergences ({arxiv_id})",
                abstract=(
                    f"We show $O(n \\log n)$ bounds with <b>tags</b> & 50% less data, item {i}."
                ),
                categories=["cs.CV"] if i == 1 else ["cs.CL"],
                upvotes=10 * (count - i),
                code_url=f"https://github.com/lab/p{i}" if i % 3 == 0 else None,
                published_at=datetime(day.year, day.month, day.day, 1, tzinfo=UTC),
                listing=listed(day, position=i),
            )
        )
    write_records(engine, *records)
    return ids


def add_subscriber(
    engine: Engine,
    email: str,
    *,
    frequency: str = "daily",
    size: int = 5,
    user_id: int | None = None,
    confirmed: bool = True,
) -> subs.Subscription:
    with write_transaction(engine) as connection:
        sub, _ = subs.subscribe(connection, email, size=size, frequency=frequency, user_id=user_id)
        if confirmed:
            sub = subs.confirm(connection, SECRET, subs.confirmation_token(SECRET, sub))
    return sub


def smtp_settings(settings: Settings, sink: SmtpSink, **changes: object) -> Settings:
    return settings.replace(
        mail_backend="smtp",
        smtp_host=sink.host,
        smtp_port=sink.port,
        smtp_security="none",
        **changes,
    )


def sent_on(period: Period) -> datetime:
    """A moment after ``period``'s send time."""
    return datetime(period.send_on.year, period.send_on.month, period.send_on.day, 15, tzinfo=UTC)
