"""The daily lists as the Hugging Face ``/api/daily_papers`` endpoint pages them.

Scope: the papers on the lists of the days from ``first`` to ``last`` (every list day when they
are None), only the entries submitted by ``submitter`` (a username, any case) when one is given;
each paper once, on its most recent list day in scope, as lists show them
(:func:`papertide.cards.visible_entry`).

When a paper appeared on a list (the entry's ``publishedAt``): the time of the submission when a
person submitted it that day, else the start of the list day in the site time zone.

Order, ``publishedAt`` (the default): newest first, i.e. the newest list day first; within a day
the submissions, newest first, then the entries an import or a rule made, in their list order;
then arXiv id. ``trending``: the order of the trending table (see :mod:`papertide.daily`); papers
in scope that it does not hold (listed before the trending window) follow, most upvoted first,
then in ``publishedAt`` order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, case, func, select

from papertide.cards import PaperCard, card_select, fetch_cards, visible_entry
from papertide.db.schema import daily_entries, organizations, papers, trending, users
from papertide.errors import InvalidInput

SUBMISSION = "submission"  # daily_entries.source of a person's submission
# How a publishedAt page's window of days grows when it falls short (None: the whole scope).
WINDOW_WIDENING: tuple[int | None, ...] = (1, 4, None)


class DailySort(StrEnum):
    PUBLISHED_AT = "publishedAt"
    TRENDING = "trending"

    @classmethod
    def parse(cls, value: str) -> DailySort:
        try:
            return cls(value)
        except ValueError:
            choices = " or ".join(s.value for s in cls)
            raise InvalidInput(f"sort: {value!r} is not a sort order; use {choices}") from None


@dataclass(frozen=True, slots=True)
class DailyScope:
    """Which entries, in which order."""

    first: date | None = None
    last: date | None = None
    submitter: str | None = None
    sort: DailySort = DailySort.PUBLISHED_AT


@dataclass(frozen=True, slots=True)
class Submitter:
    username: str  # an account's username here, or the name an import carried
    fullname: str


@dataclass(frozen=True, slots=True)
class EntryDetails:
    listed_at: datetime  # UTC
    submitter: Submitter | None


@dataclass(frozen=True, slots=True)
class DailyEntry:
    """A paper on a daily list: its card (``listed_on`` is the list day), when and by whom."""

    card: PaperCard
    listed_at: datetime
    submitter: Submitter | None


def daily_page(
    connection: Connection, scope: DailyScope, timezone: str, offset: int, limit: int
) -> tuple[list[DailyEntry], bool]:
    """``limit`` entries in scope from ``offset``, and whether more follow.

    Bounded by the page, not by the lists' size: in ``publishedAt`` order a page lies on the
    newest days, so it is read from a window of days holding ``offset + limit + 1`` entries
    (:func:`_window_start`), widened (x4, then the whole scope) when papers listed on several
    of its days leave it short. In ``trending`` order the trending table's papers come first,
    so the page is read from them alone when they fill it. Only a page past them, or a
    submitter's scope, reads every entry in scope."""
    wanted = offset + limit + 1
    cards: list[PaperCard] = []
    if scope.submitter:
        cards = _cards(connection, scope, offset, limit + 1)
    elif scope.sort is DailySort.TRENDING:
        cards = _cards(connection, scope, offset, limit + 1, trending_only=True)
        if len(cards) <= limit:
            cards = _cards(connection, scope, offset, limit + 1)
    else:
        for factor in WINDOW_WIDENING:
            since = scope.first
            if factor is not None:
                since = _window_start(connection, scope, wanted * factor)
            window = DailyScope(since, scope.last, None, scope.sort)
            cards = _cards(connection, window, offset, limit + 1)
            if len(cards) > limit or since == scope.first:
                break
    more = len(cards) > limit
    cards = cards[:limit]
    keys = [(c.arxiv_id, c.listed_on) for c in cards if c.listed_on is not None]
    details = entry_details(connection, keys, timezone)
    entries = []
    for (arxiv_id, day), card in zip(keys, cards, strict=True):  # every card has its list day
        found = details.get((arxiv_id, day)) or EntryDetails(day_start(day, timezone), None)
        entries.append(DailyEntry(card, found.listed_at, found.submitter))
    return entries, more


def _window_start(connection: Connection, scope: DailyScope, entries: int) -> date | None:
    """The newest day from which the scope's days hold ``entries`` entries (of any status),
    or the scope's first day when they hold fewer: an index-only walk of ``entries`` rows."""
    statement = select(daily_entries.c.day)
    if scope.first is not None:
        statement = statement.where(daily_entries.c.day >= scope.first)
    if scope.last is not None:
        statement = statement.where(daily_entries.c.day <= scope.last)
    day = connection.execute(
        statement.order_by(daily_entries.c.day.desc()).offset(entries - 1).limit(1)
    ).scalar_one_or_none()
    return scope.first if day is None else day


def _cards(
    connection: Connection,
    scope: DailyScope,
    offset: int,
    limit: int,
    *,
    trending_only: bool = False,
) -> list[PaperCard]:
    """The cards of the scope's papers, each on its latest list day in scope, in the scope's
    order; with ``trending_only``, of the papers the trending table holds."""
    conditions: list[Any] = [visible_entry()]
    if scope.first is not None:
        conditions.append(daily_entries.c.day >= scope.first)
    if scope.last is not None:
        conditions.append(daily_entries.c.day <= scope.last)
    if scope.submitter:
        name = scope.submitter.strip().lower()
        conditions.append(func.lower(daily_entries.c.submitter_name) == name)
    if trending_only:
        conditions.append(daily_entries.c.paper_id.in_(select(trending.c.paper_id)))
    latest = (
        select(daily_entries.c.paper_id, func.max(daily_entries.c.day).label("day"))
        .join(papers, papers.c.id == daily_entries.c.paper_id)
        .where(*conditions)
        .group_by(daily_entries.c.paper_id)
        .subquery()
    )
    source = (
        daily_entries.join(
            latest,
            and_(
                latest.c.paper_id == daily_entries.c.paper_id, latest.c.day == daily_entries.c.day
            ),
        )
        .join(papers, papers.c.id == daily_entries.c.paper_id)
        .outerjoin(organizations, organizations.c.id == papers.c.organization_id)
    )
    submitted_at = case((daily_entries.c.source == SUBMISSION, daily_entries.c.created_at))
    order: list[Any] = [
        daily_entries.c.day.desc(),
        submitted_at.desc().nulls_last(),
        daily_entries.c.position.asc().nulls_last(),
        papers.c.arxiv_id,
    ]
    if scope.sort is DailySort.TRENDING:
        source = source.outerjoin(trending, trending.c.paper_id == papers.c.id)
        order = [trending.c.rank.asc().nulls_last(), papers.c.upvotes.desc(), *order]
    statement = (
        card_select()
        .select_from(source)
        .where(visible_entry())
        .order_by(*order)
        .limit(limit)
        .offset(offset)
    )
    return fetch_cards(connection, statement)


def entry_details(
    connection: Connection, keys: list[tuple[str, date]], timezone: str
) -> dict[tuple[str, date], EntryDetails]:
    """When each (arXiv id, list day) entry appeared, and who submitted it."""
    if not keys:
        return {}
    wanted = set(keys)
    rows = connection.execute(
        select(
            papers.c.arxiv_id,
            daily_entries.c.day,
            daily_entries.c.source,
            daily_entries.c.created_at,
            daily_entries.c.submitter_name,
            users.c.username,
            users.c.display_name,
        )
        .select_from(
            daily_entries.join(papers, papers.c.id == daily_entries.c.paper_id).outerjoin(
                users, users.c.id == daily_entries.c.submitted_by_user_id
            )
        )
        .where(
            papers.c.arxiv_id.in_(sorted({k[0] for k in keys})),
            daily_entries.c.day.in_(sorted({k[1] for k in keys})),
        )
    )
    found = {}
    for row in rows:
        key = (row.arxiv_id, row.day)
        if key in wanted:
            listed_at = _listed_at(row.day, row.source, row.created_at, timezone)
            found[key] = EntryDetails(listed_at, _submitter(row))
    return found


def day_start(day: date, timezone: str) -> datetime:
    """Midnight starting ``day`` in ``timezone``, in UTC."""
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(timezone)).astimezone(UTC)


def _listed_at(day: date, source: str, created_at: datetime, timezone: str) -> datetime:
    """The submission time when it falls on the list day (an entry approved on a later day
    counts from that day's start), else the start of the day."""
    start = day_start(day, timezone)
    if source == SUBMISSION and start <= created_at < day_start(day + timedelta(1), timezone):
        return created_at.astimezone(UTC)
    return start


def _submitter(row: Any) -> Submitter | None:
    if row.username is not None:
        return Submitter(row.username, row.display_name or row.username)
    if row.submitter_name:
        return Submitter(row.submitter_name, row.submitter_name)
    return None
