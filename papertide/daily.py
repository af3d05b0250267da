"""Daily, weekly and monthly lists, and trending scores.

Days are counted in the site time zone (``settings.timezone``, New York by default, like the
Hugging Face list): a paper's *list day* is the day it appeared on the daily list
(``daily_entries.day``), which is a different thing from its arXiv submission date.

Ordering. A day's list is sorted by upvotes (most first), then by the paper's position on that
day's list as the source gave it (papers without a position last), then by arXiv id. Week and
month lists show each paper once (on its most recent list day in the range) and sort by upvotes,
then list day (newest first), then position, then arXiv id.

Trending. ``score = (upvotes + 1) / (age_hours + 2) ** gravity`` (``gravity`` is
``settings.trending_gravity``), where ``age_hours`` runs from the start (midnight, site time zone)
of the paper's most recent list day to the *reference time*. Only the lists of the last
``settings.trending_window_days`` days up to the reference day count. The reference time is
*now*, unless the newest list is older than that window (a stale or demo data set): then it is
the end of the newest list day, so trending is never empty while any list exists. Ties are
broken by list position, then arXiv id. :func:`compute_trending` writes the scores, ranks and a
one-line reason per paper to the ``trending`` table; :func:`trending_list` only reads it.

Visibility: lists, their neighbouring days and trending show only what
:func:`papertide.cards.visible_entry` lets through, at once (trending too, before its next run).

Every list costs a fixed number of queries, however many papers it holds: one for the cards
(joined with their organization) and one for the first authors of all of them (see
:mod:`papertide.cards`, which also builds the paper page; its names are re-exported here).
"""

from __future__ import annotations

import calendar
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, and_, delete, func, insert, select

from papertide.cards import (
    CardPage,
    PaperCard,
    PaperPage,
    card_select,
    check_page,
    fetch_cards,
    from_entries,
    list_day_select,
    nearest_list_day,
    page_count,
    paper_page,
    visible_entry,
)
from papertide.config import Settings
from papertide.db.engine import write_transaction
from papertide.db.schema import daily_entries, organizations, papers, trending
from papertide.errors import InvalidInput

__all__ = [
    "CardPage",
    "DayView",
    "PaperCard",
    "PaperPage",
    "TrendingReference",
    "compute_trending",
    "day_list",
    "day_view",
    "latest_list_day",
    "month_list",
    "next_day",
    "page_count",
    "paper_page",
    "previous_day",
    "today",
    "trending_list",
    "week_list",
]


@dataclass(frozen=True, slots=True)
class DayView:
    """A day's list with its neighbours: the nearest earlier and later days that have papers."""

    requested: date
    day: date  # the day shown: ``requested`` unless the front page fell back to the latest list
    cards: list[PaperCard]
    previous: date | None
    next: date | None

    @property
    def fell_back(self) -> bool:
        return self.day != self.requested


@dataclass(frozen=True, slots=True)
class TrendingReference:
    """The moment trending ages are measured to, and the list days that count."""

    at: datetime
    day: date  # the reference day (site time zone)
    first_day: date  # the first day of the window
    stale: bool  # True when the newest list is older than the window


# --- dates ---------------------------------------------------------------------------------


def today(settings: Settings, now: datetime | None = None) -> date:
    """The current day in the site time zone."""
    return _aware(now).astimezone(ZoneInfo(settings.timezone)).date()


def week_bounds(iso_year: int, iso_week: int) -> tuple[date, date]:
    """Monday and Sunday of an ISO week; week 1 may start in the previous calendar year."""
    try:
        monday = date.fromisocalendar(iso_year, iso_week, 1)
    except ValueError:
        raise InvalidInput(f"{iso_year}-W{iso_week:02d} is not an ISO week") from None
    return monday, monday + timedelta(days=6)


def month_bounds(year: int, month: int) -> tuple[date, date]:
    """First and last day of a calendar month."""
    if not (1 <= year <= 9999 and 1 <= month <= 12):
        raise InvalidInput(f"{year}-{month:02d} is not a month")
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def _aware(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError(f"naive datetime {now!r}: give a timezone-aware value")
    return now


def _day_start(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz)


# --- days ----------------------------------------------------------------------------------


def latest_list_day(connection: Connection, on_or_before: date) -> date | None:
    """The newest day, on or before ``on_or_before``, whose list has papers."""
    return nearest_list_day(connection, daily_entries.c.day <= on_or_before, latest=True)


def previous_day(connection: Connection, day: date) -> date | None:
    """The nearest day before ``day`` that has papers."""
    return nearest_list_day(connection, daily_entries.c.day < day, latest=True)


def next_day(connection: Connection, day: date) -> date | None:
    """The nearest day after ``day`` that has papers."""
    return nearest_list_day(connection, daily_entries.c.day > day, latest=False)


def day_list(connection: Connection, day: date) -> list[PaperCard]:
    """The papers listed on ``day``: most upvoted first, then in list order."""
    statement = (
        from_entries(card_select())
        .where(daily_entries.c.day == day)
        .order_by(
            papers.c.upvotes.desc(),
            daily_entries.c.position.asc().nulls_last(),
            papers.c.arxiv_id,
        )
    )
    return fetch_cards(connection, statement)


def day_view(connection: Connection, day: date, *, fallback: bool = False) -> DayView:
    """``day``'s list and its neighbours; with ``fallback``, an empty day shows the latest list
    before it instead (the front page does this when today has no papers yet)."""
    shown = day
    cards = day_list(connection, day)
    if not cards and fallback:
        latest = latest_list_day(connection, day)
        if latest is not None:
            shown, cards = latest, day_list(connection, latest)
    before = list_day_select(daily_entries.c.day < shown, latest=True)
    after = list_day_select(daily_entries.c.day > shown, latest=False)
    previous, following = connection.execute(
        select(before.scalar_subquery(), after.scalar_subquery())
    ).one()
    return DayView(day, shown, cards, previous, following)


# --- weeks and months --------------------------------------------------------------------------


def range_list(
    connection: Connection, first: date, last: date, page: int = 1, page_size: int = 50
) -> CardPage:
    """Papers listed between ``first`` and ``last`` (inclusive), each once, on its most recent
    list day in the range; sorted by upvotes, then day (newest first), then position."""
    offset = check_page(page, page_size)
    latest = (
        select(daily_entries.c.paper_id, func.max(daily_entries.c.day).label("day"))
        .join(papers, papers.c.id == daily_entries.c.paper_id)
        .where(daily_entries.c.day.between(first, last), visible_entry())
        .group_by(daily_entries.c.paper_id)
        .subquery()
    )
    total = connection.execute(select(func.count()).select_from(latest)).scalar_one()
    if total == 0 or offset >= total:
        return CardPage([], total)
    statement = (
        from_entries(card_select())
        .join(
            latest,
            and_(
                latest.c.paper_id == daily_entries.c.paper_id, latest.c.day == daily_entries.c.day
            ),
        )
        .order_by(
            papers.c.upvotes.desc(),
            daily_entries.c.day.desc(),
            daily_entries.c.position.asc().nulls_last(),
            papers.c.arxiv_id,
        )
        .limit(page_size)
        .offset(offset)
    )
    return CardPage(fetch_cards(connection, statement), total)


def week_list(
    connection: Connection, iso_year: int, iso_week: int, page: int = 1, page_size: int = 50
) -> CardPage:
    """The papers of ISO week ``iso_year``-W``iso_week`` (Monday to Sunday)."""
    first, last = week_bounds(iso_year, iso_week)
    return range_list(connection, first, last, page, page_size)


def month_list(
    connection: Connection, year: int, month: int, page: int = 1, page_size: int = 50
) -> CardPage:
    """The papers of a calendar month."""
    first, last = month_bounds(year, month)
    return range_list(connection, first, last, page, page_size)


# --- trending ------------------------------------------------------------------------------


def trending_score(upvotes: int, age_hours: float, gravity: float) -> float:
    """The HN-style score: ``(upvotes + 1) / (age_hours + 2) ** gravity``."""
    return (upvotes + 1) / math.pow(age_hours + 2, gravity)


def trending_reference(
    connection: Connection, settings: Settings, now: datetime | None = None
) -> TrendingReference | None:
    """Where trending ages are measured to (None: there is no list at all).

    Normally *now*, with a window of the last ``trending_window_days`` days up to today. When
    the newest list is older than that window, the end of the newest list day instead, with the
    window ending on that day.
    """
    now = _aware(now)
    tz = ZoneInfo(settings.timezone)
    local_today = now.astimezone(tz).date()
    newest = latest_list_day(connection, local_today)
    if newest is None:
        return None
    span = timedelta(days=settings.trending_window_days - 1)
    if newest >= local_today - span:
        return TrendingReference(now, local_today, local_today - span, stale=False)
    end = _day_start(newest + timedelta(days=1), tz)
    return TrendingReference(end, newest, newest - span, stale=True)


@dataclass(slots=True)
class _Entry:
    paper_id: int
    arxiv_id: str
    day: date
    position: int | None
    upvotes: int
    day_rank: int = 0

    def list_order(self) -> tuple[bool, int, str]:
        return (self.position is None, self.position or 0, self.arxiv_id)


def _window_entries(connection: Connection, ref: TrendingReference) -> list[_Entry]:
    """Each paper listed in the window, on its most recent list day, with its rank that day."""
    rows = connection.execute(
        select(
            daily_entries.c.paper_id,
            papers.c.arxiv_id,
            daily_entries.c.day,
            daily_entries.c.position,
            papers.c.upvotes,
        )
        .join(papers, papers.c.id == daily_entries.c.paper_id)
        .where(daily_entries.c.day.between(ref.first_day, ref.day), visible_entry())
    )
    by_day: dict[date, list[_Entry]] = {}
    for row in rows:
        by_day.setdefault(row.day, []).append(_Entry(*row))
    latest: dict[int, _Entry] = {}
    for day in sorted(by_day):
        entries = sorted(by_day[day], key=lambda e: (-e.upvotes, *e.list_order()))
        for rank, entry in enumerate(entries, start=1):
            entry.day_rank = rank
            latest[entry.paper_id] = entry
    return list(latest.values())


def _listed_when(listed_on: date, ref: TrendingReference) -> str:
    days = (ref.day - listed_on).days
    if ref.stale:
        # Relative words would mislead on old data: say the date, and how it relates to the
        # newest list the ages are measured from.
        shown = f"{listed_on:%b} {listed_on.day}, {listed_on.year}"
        if days == 0:
            return f"{shown} (the newest list)"
        return f"{shown} ({days} day{'s' * (days != 1)} before the newest list)"
    if days == 0:
        return "today"
    return "yesterday" if days == 1 else f"{days} days ago"


def trending_reason(upvotes: int, listed_on: date, day_rank: int, ref: TrendingReference) -> str:
    """The line a trending card shows, e.g. "12 upvotes, listed 2 days ago, #3 on the list"."""
    votes = f"{upvotes} upvote{'s' * (upvotes != 1)}"
    return f"{votes}, listed {_listed_when(listed_on, ref)}, #{day_rank} on the list"


def score_trending(
    connection: Connection, settings: Settings, now: datetime | None = None
) -> list[dict[str, Any]]:
    """The ``trending`` rows for ``now`` (see the module docstring), best first."""
    now = _aware(now)
    ref = trending_reference(connection, settings, now)
    if ref is None:
        return []
    tz = ZoneInfo(settings.timezone)
    scored = []
    for entry in _window_entries(connection, ref):
        age_hours = (ref.at - _day_start(entry.day, tz)).total_seconds() / 3600
        score = trending_score(entry.upvotes, age_hours, settings.trending_gravity)
        scored.append((score, entry))
    scored.sort(key=lambda item: (-item[0], *item[1].list_order()))
    return [
        {
            "paper_id": entry.paper_id,
            "score": score,
            "rank": rank,
            "upvotes": entry.upvotes,
            "listed_on": entry.day,
            "reason": trending_reason(entry.upvotes, entry.day, entry.day_rank, ref),
            "computed_at": now,
        }
        for rank, (score, entry) in enumerate(scored, start=1)
    ]


def compute_trending(engine: Engine, settings: Settings, now: datetime | None = None) -> int:
    """The trending job: rewrite the ``trending`` table in one transaction; return its rows."""
    now = _aware(now)
    with write_transaction(engine) as connection:
        rows = score_trending(connection, settings, now)
        connection.execute(delete(trending))
        if rows:
            connection.execute(insert(trending), rows)
    return len(rows)


def trending_list(connection: Connection, page: int = 1, page_size: int = 50) -> CardPage:
    """One page of the trending table, best first; each card carries its reason."""
    offset = check_page(page, page_size)
    entries = trending.join(papers, papers.c.id == trending.c.paper_id).join(
        daily_entries,
        and_(
            daily_entries.c.paper_id == trending.c.paper_id,
            daily_entries.c.day == trending.c.listed_on,
        ),
    )
    total = connection.execute(
        select(func.count()).select_from(entries).where(visible_entry())
    ).scalar_one()
    if offset >= total:
        return CardPage([], total)
    statement = (
        card_select(trending.c.listed_on)
        .add_columns(trending.c.reason)
        .select_from(
            entries.outerjoin(organizations, organizations.c.id == papers.c.organization_id)
        )
        .where(visible_entry())
        .order_by(trending.c.rank)
        .limit(page_size)
        .offset(offset)
    )
    return CardPage(fetch_cards(connection, statement), total)
