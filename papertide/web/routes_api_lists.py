"""JSON API lists: the catalog newest first, daily, weekly and monthly lists, and trending.

Each is read a page at a time along its keyset (see :mod:`papertide.web.pagination`), in the
same order as the pages of the site (:mod:`papertide.daily`): a day by upvotes, then list
position, then arXiv id; a week or month each paper once, on its latest list day, by upvotes,
day (newest first), position and arXiv id; trending by rank.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from sqlalchemy import Connection, and_, func, select

from papertide import daily
from papertide.cards import (
    PaperCard,
    card_select,
    cards_for_ids,
    fetch_cards,
    from_entries,
    visible_entry,
)
from papertide.db.schema import daily_entries, organizations, papers, trending
from papertide.errors import InvalidInput, NotFound
from papertide.search.filters import SearchFilters
from papertide.web import api_models as m
from papertide.web.deps import AppSettings, DbConnection
from papertide.web.pagination import Key, Keyset
from papertide.web.params import parse_month, parse_week
from papertide.web.routes_api_common import (
    LIST_ERRORS,
    NOT_FOUND,
    Categories,
    CurrentCaller,
    CursorParam,
    PageLimit,
    answer,
    card_fields,
    card_models,
    cursors,
    keyset_page,
    page_of,
    voted_set,
    where_after,
)
from papertide.web.routes_search import _categories

router = APIRouter(tags=["lists"])

YEAR = "(19[0-9]{2}|2[0-9]{3})"  # the years lists are kept for (papertide.web.params)
WEEK_PATTERN = f"^{YEAR}-W(0[1-9]|[1-4][0-9]|5[0-3])$"
MONTH_PATTERN = f"^{YEAR}-(0[1-9]|1[0-2])$"
NO_POSITION = 2**31 - 1  # papers without a list position sort after those with one
_position = func.coalesce(daily_entries.c.position, NO_POSITION)
_newest = func.coalesce(papers.c.published_at, papers.c.created_at)

CATALOG_ORDER = Keyset((Key(_newest, "datetime", descending=True), Key(papers.c.id, "int", True)))
DAY_ORDER = Keyset(
    (
        Key(papers.c.upvotes, "int", descending=True),
        Key(_position, "int"),
        Key(papers.c.arxiv_id, "str"),
    )
)
PERIOD_ORDER = Keyset(
    (
        Key(papers.c.upvotes, "int", descending=True),
        Key(daily_entries.c.day, "date", descending=True),
        Key(_position, "int"),
        Key(papers.c.arxiv_id, "str"),
    )
)
TRENDING_ORDER = Keyset((Key(trending.c.rank, "int"),))


def _position_of(card: PaperCard) -> int:
    return NO_POSITION if card.position is None else card.position


# --- the catalog -------------------------------------------------------------------------------


@router.get("/papers", response_model=m.PaperList, responses=LIST_ERRORS)
def list_papers(
    request: Request,
    connection: DbConnection,
    caller: CurrentCaller,
    category: Categories = None,
    organization: Annotated[str, Query(max_length=100, description="Organization slug.")] = "",
    has_code: Annotated[bool, Query(description="Only papers with a code link.")] = False,
    listed: Annotated[bool, Query(description="Only papers on a daily list.")] = False,
    date_from: Annotated[
        m.IsoDay | None, Query(alias="from", description="Published on or after.")
    ] = None,
    date_to: Annotated[
        m.IsoDay | None, Query(alias="to", description="Published on or before.")
    ] = None,
    limit: PageLimit = 50,
    cursor: CursorParam = None,
) -> Response:
    """The catalog, newest first (arXiv's first-version date; papers without one by when they
    were added)."""
    filters = SearchFilters(
        date_from=date_from,
        date_to=date_to,
        categories=_categories(category or []),
        organization=organization.strip() or None,
        has_code=has_code,
        on_list=listed,
    )
    scope, after = keyset_page(request, CATALOG_ORDER, cursor)
    statement = select(papers.c.id, _newest.label("newest")).where(filters.sql())
    statement = where_after(statement, after).order_by(*CATALOG_ORDER.order_by()).limit(limit + 1)
    rows, last = page_of(list(connection.execute(statement)), limit)
    cards = cards_for_ids(connection, [row.id for row in rows])
    next_cursor = None if last is None else cursors(request).make(scope, [last.newest, last.id])
    body = m.PaperList(items=card_models(connection, caller, cards), next_cursor=next_cursor)
    return answer(request, body, next_cursor=next_cursor)


# --- days, weeks, months --------------------------------------------------------------------------


def _day_answer(
    request: Request,
    connection: Connection,
    caller: CurrentCaller,
    day: date,
    limit: int,
    cursor: str | None,
) -> Response:
    scope, after = keyset_page(request, DAY_ORDER, cursor, extra=day.isoformat())
    statement = from_entries(card_select()).where(daily_entries.c.day == day)
    statement = where_after(statement, after).order_by(*DAY_ORDER.order_by()).limit(limit + 1)
    cards, last = page_of(fetch_cards(connection, statement), limit)
    next_cursor = None
    if last is not None:
        values = [last.upvotes, _position_of(last), last.arxiv_id]
        next_cursor = cursors(request).make(scope, values)
    body = m.DayList(
        items=card_models(connection, caller, cards),
        next_cursor=next_cursor,
        day=day,
        previous_day=daily.previous_day(connection, day),
        next_day=daily.next_day(connection, day),
    )
    return answer(request, body, next_cursor=next_cursor)


@router.get("/lists/daily", response_model=m.DayList, responses=LIST_ERRORS)
def latest_day(
    request: Request,
    connection: DbConnection,
    settings: AppSettings,
    caller: CurrentCaller,
    limit: PageLimit = 50,
    cursor: CursorParam = None,
) -> Response:
    """The latest daily list (today's, or the newest before it when today has none yet)."""
    today = daily.today(settings)
    day = daily.latest_list_day(connection, today) or today
    return _day_answer(request, connection, caller, day, limit, cursor)


@router.get("/lists/daily/{day}", response_model=m.DayList, responses=LIST_ERRORS)
def day_list(
    request: Request,
    connection: DbConnection,
    caller: CurrentCaller,
    day: Annotated[m.IsoDay, Path(description="The list's day, YYYY-MM-DD (site time zone).")],
    limit: PageLimit = 50,
    cursor: CursorParam = None,
) -> Response:
    """One day's list: most upvoted first, then in the order the source listed them."""
    return _day_answer(request, connection, caller, day, limit, cursor)


def _period_answer(
    request: Request,
    connection: Connection,
    caller: CurrentCaller,
    period: str,
    bounds: tuple[date, date],
    limit: int,
    cursor: str | None,
) -> Response:
    first, last_day = bounds
    scope, after = keyset_page(request, PERIOD_ORDER, cursor)
    latest = (
        select(daily_entries.c.paper_id, func.max(daily_entries.c.day).label("day"))
        .join(papers, papers.c.id == daily_entries.c.paper_id)
        .where(daily_entries.c.day.between(first, last_day), visible_entry())
        .group_by(daily_entries.c.paper_id)
        .subquery()
    )
    statement = from_entries(card_select()).join(
        latest,
        and_(latest.c.paper_id == daily_entries.c.paper_id, latest.c.day == daily_entries.c.day),
    )
    statement = where_after(statement, after).order_by(*PERIOD_ORDER.order_by()).limit(limit + 1)
    cards, last = page_of(fetch_cards(connection, statement), limit)
    next_cursor = None
    if last is not None:
        values = [last.upvotes, last.listed_on, _position_of(last), last.arxiv_id]
        next_cursor = cursors(request).make(scope, values)
    body = m.PeriodList(
        items=card_models(connection, caller, cards),
        next_cursor=next_cursor,
        period=period,
        first_day=first,
        last_day=last_day,
    )
    return answer(request, body, next_cursor=next_cursor)


@router.get(
    "/lists/weekly/{week}", response_model=m.PeriodList, responses={**LIST_ERRORS, **NOT_FOUND}
)
def week_list(
    request: Request,
    connection: DbConnection,
    caller: CurrentCaller,
    week: Annotated[
        str,
        Path(
            pattern=WEEK_PATTERN,
            description="ISO week, e.g. 2025-W18.",
            examples=["2025-W06"],
        ),
    ],
    limit: PageLimit = 50,
    cursor: CursorParam = None,
) -> Response:
    """An ISO week's papers (Monday to Sunday), each once; 404 for a week 53 the year lacks."""
    try:
        year, number = parse_week(week)
    except InvalidInput:
        raise NotFound(f"there is no week {week}: that year has 52 weeks") from None
    bounds = daily.week_bounds(year, number)
    label = f"{year}-W{number:02d}"
    return _period_answer(request, connection, caller, label, bounds, limit, cursor)


@router.get("/lists/monthly/{month}", response_model=m.PeriodList, responses=LIST_ERRORS)
def month_list(
    request: Request,
    connection: DbConnection,
    caller: CurrentCaller,
    month: Annotated[
        str,
        Path(
            pattern=MONTH_PATTERN,
            description="A month, e.g. 2025-05.",
            examples=["2025-02"],
        ),
    ],
    limit: PageLimit = 50,
    cursor: CursorParam = None,
) -> Response:
    """A calendar month's papers, each once."""
    year, number = parse_month(month)
    bounds = daily.month_bounds(year, number)
    label = f"{year:04d}-{number:02d}"
    return _period_answer(request, connection, caller, label, bounds, limit, cursor)


# --- trending ----------------------------------------------------------------------------------


@router.get("/trending", response_model=m.TrendingList, responses=LIST_ERRORS)
def trending_list(
    request: Request,
    connection: DbConnection,
    caller: CurrentCaller,
    limit: PageLimit = 50,
    cursor: CursorParam = None,
) -> Response:
    """Trending papers, best first, with their score, rank and the reason for it (recomputed
    by the scheduler every ``trending_refresh_minutes``)."""
    scope, after = keyset_page(request, TRENDING_ORDER, cursor)
    entries = trending.join(papers, papers.c.id == trending.c.paper_id).join(
        daily_entries,
        and_(
            daily_entries.c.paper_id == trending.c.paper_id,
            daily_entries.c.day == trending.c.listed_on,
        ),
    )
    statement = (
        select(trending.c.paper_id, trending.c.rank, trending.c.score, trending.c.reason)
        .select_from(entries)
        .where(visible_entry())
    )
    statement = where_after(statement, after).order_by(*TRENDING_ORDER.order_by()).limit(limit + 1)
    rows, last = page_of(list(connection.execute(statement)), limit)
    cards = fetch_cards(
        connection,
        card_select(trending.c.listed_on)
        .select_from(
            entries.outerjoin(organizations, organizations.c.id == papers.c.organization_id)
        )
        .where(trending.c.paper_id.in_([row.paper_id for row in rows]))
        .order_by(trending.c.rank),
    )
    voted = voted_set(connection, caller, cards)
    by_id = {row.paper_id: row for row in rows}
    items = [
        m.TrendingCard(
            **card_fields(card, voted),
            rank=by_id[card.paper_id].rank,
            score=by_id[card.paper_id].score,
            reason=by_id[card.paper_id].reason,
        )
        for card in cards
    ]
    next_cursor = None if last is None else cursors(request).make(scope, [last.rank])
    return answer(
        request, m.TrendingList(items=items, next_cursor=next_cursor), next_cursor=next_cursor
    )
