"""The list pages: the front page, days, ISO weeks, months and trending."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from papertide import daily
from papertide.cards import CardPage, PaperCard, page_count
from papertide.community.votes import voted_paper_ids
from papertide.errors import InvalidInput, NotFound
from papertide.web.auth import viewer_of
from papertide.web.deps import AppSettings, DbConnection
from papertide.web.params import parse_day, parse_month, parse_week
from papertide.web.rendering import day_url, human_date, month_url, render, week_label, week_url

router = APIRouter()
PageNumber = Annotated[int, Query(ge=1, le=1_000_000, description="Page number, from 1.")]


@dataclass(frozen=True, slots=True)
class Link:
    url: str
    label: str


@dataclass(frozen=True, slots=True)
class Pager:
    page: int
    pages: int
    previous: str | None
    next: str | None


@router.get("/", response_class=HTMLResponse)
def front_page(request: Request, connection: DbConnection, settings: AppSettings) -> HTMLResponse:
    view = daily.day_view(connection, daily.today(settings), fallback=True)
    return _render_day(request, view, voted_on(request, connection, view.cards))


@router.get("/papers", include_in_schema=False)
def papers_root() -> RedirectResponse:
    return RedirectResponse("/", status_code=307)


@router.get("/papers/date", include_in_schema=False)
def date_picker(date: str = "") -> RedirectResponse:
    """Target of the date-picker form: ``?date=YYYY-MM-DD`` goes to that day's page."""
    if not date:
        raise InvalidInput("choose a date to go to (YYYY-MM-DD)")
    return RedirectResponse(day_url(parse_day(date)), status_code=303)


@router.get("/papers/date/{day}", response_class=HTMLResponse)
def day_page(day: str, request: Request, connection: DbConnection) -> HTMLResponse:
    view = daily.day_view(connection, parse_day(day))
    return _render_day(request, view, voted_on(request, connection, view.cards))


def voted_on(request: Request, connection: DbConnection, cards: list[PaperCard]) -> set[str]:
    """The arXiv ids of the cards the viewer has upvoted (their buttons show pressed)."""
    return voted_paper_ids(connection, viewer_of(request).user, [c.arxiv_id for c in cards])


def _render_day(request: Request, view: daily.DayView, voted: set[str]) -> HTMLResponse:
    notice = None
    if view.fell_back:
        notice = (
            f"No papers yet for today, {human_date(view.requested)}: "
            f"showing the latest list, from {human_date(view.day)}."
        )
    context = {
        "section": "daily",
        "kind": "day",
        "title": f"Daily papers, {human_date(view.day)}",
        "heading": "Daily Papers",
        "subheading": human_date(view.day),
        "count": len(view.cards),
        "previous": Link(day_url(view.previous), human_date(view.previous))
        if view.previous
        else None,
        "next": Link(day_url(view.next), human_date(view.next)) if view.next else None,
        "nav_label": "Days with papers",
        "notice": notice,
        "cards": view.cards,
        "voted": voted,
        "start": 0,
        "picker_day": view.day,
        "empty": f"No papers on {view.day.isoformat()}.",
        "catalog_empty": view.previous is None and view.next is None,
        "pager": None,
    }
    return render(request, "list.html", context)


def _latest_or_today(connection: DbConnection, settings: AppSettings) -> date:
    today = daily.today(settings)
    return daily.latest_list_day(connection, today) or today


@router.get("/papers/week", include_in_schema=False)
def latest_week(connection: DbConnection, settings: AppSettings) -> RedirectResponse:
    """The week of the latest list (today's week when there is none)."""
    return RedirectResponse(week_url(_latest_or_today(connection, settings)), status_code=307)


@router.get("/papers/month", include_in_schema=False)
def latest_month(connection: DbConnection, settings: AppSettings) -> RedirectResponse:
    """The month of the latest list (this month when there is none)."""
    return RedirectResponse(month_url(_latest_or_today(connection, settings)), status_code=307)


@router.get("/papers/week/{week}", response_class=HTMLResponse)
def week_page(
    week: str,
    request: Request,
    connection: DbConnection,
    settings: AppSettings,
    page: PageNumber = 1,
) -> HTMLResponse:
    year, number = parse_week(week)
    result = daily.week_list(connection, year, number, page, settings.page_size)
    first, last = daily.week_bounds(year, number)
    before, after = first - timedelta(days=7), first + timedelta(days=7)
    context = {
        "section": "weekly",
        "title": f"Papers of week {week_label(first)}",
        "heading": "Weekly Papers",
        "subheading": f"Week {number} of {year}: {human_date(first)} to {human_date(last)}",
        "previous": Link(week_url(before), week_label(before)),
        "next": Link(week_url(after), week_label(after)),
        "nav_label": "Weeks",
        "empty": f"No papers in week {week_label(first)}.",
        "voted": voted_on(request, connection, result.cards),
    }
    return _render_period(request, result, page, settings.page_size, context)


@router.get("/papers/month/{month}", response_class=HTMLResponse)
def month_page(
    month: str,
    request: Request,
    connection: DbConnection,
    settings: AppSettings,
    page: PageNumber = 1,
) -> HTMLResponse:
    year, number = parse_month(month)
    result = daily.month_list(connection, year, number, page, settings.page_size)
    first = date(year, number, 1)
    before = (first - timedelta(days=1)).replace(day=1)
    after = (first + timedelta(days=31)).replace(day=1)
    context = {
        "section": "monthly",
        "title": f"Papers of {first:%B %Y}",
        "heading": "Monthly Papers",
        "subheading": f"{first:%B %Y}",
        "previous": Link(month_url(before), f"{before:%B %Y}"),
        "next": Link(month_url(after), f"{after:%B %Y}"),
        "nav_label": "Months",
        "empty": f"No papers in {first:%B %Y}.",
        "voted": voted_on(request, connection, result.cards),
    }
    return _render_period(request, result, page, settings.page_size, context)


@router.get("/papers/trending", response_class=HTMLResponse)
def trending_page(
    request: Request, connection: DbConnection, settings: AppSettings, page: PageNumber = 1
) -> HTMLResponse:
    result = daily.trending_list(connection, page, settings.page_size)
    context = {
        "section": "trending",
        "kind": "trending",
        "title": "Trending papers",
        "heading": "Trending Papers",
        "subheading": (
            f"Ranked by (upvotes + 1) / (hours since listed + 2)^{settings.trending_gravity:g} "
            f"over the last {settings.trending_window_days} days of lists"
        ),
        "previous": None,
        "next": None,
        "nav_label": "",
        "empty": "Nothing is trending yet.",
        "voted": voted_on(request, connection, result.cards),
    }
    return _render_period(request, result, page, settings.page_size, context)


def _render_period(
    request: Request, result: CardPage, page: int, page_size: int, context: dict[str, Any]
) -> HTMLResponse:
    pages = page_count(result.total, page_size)
    if page > pages:
        raise NotFound(f"page {page} of {context['title'].lower()} does not exist: it has {pages}")
    path = request.url.path
    pager = Pager(
        page=page,
        pages=pages,
        previous=f"{path}?page={page - 1}" if page > 1 else None,
        next=f"{path}?page={page + 1}" if page < pages else None,
    )
    defaults = {
        "kind": "period",
        "count": result.total,
        "notice": None,
        "cards": result.cards,
        "start": (page - 1) * page_size,
        "picker_day": None,
        "catalog_empty": False,
        "pager": pager,
    }
    return render(request, "list.html", {**defaults, **context})
