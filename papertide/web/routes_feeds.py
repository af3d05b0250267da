"""Feeds of the list pages (Atom, RSS 2.0, JSON Feed 1.1) and the private "for you" feed.

Every list has a feed in each format, named by the URL's extension (any other extension is a
404): ``/feeds/daily.atom`` (the latest daily list; ``?date=YYYY-MM-DD`` for a given day),
``/feeds/weekly.rss`` (``?week=YYYY-Www``), ``/feeds/monthly.json`` (``?month=YYYY-MM``),
``/feeds/trending.atom``, ``/search/feed.atom?q=...`` (the search page's own query parameters),
``/orgs/{slug}/feed.atom``, ``/users/{name}/folders/{slug}/feed.atom`` (public folders only) and
``/feeds/for-you/{token}.atom``, a user's "for you" page at a secret, revocable URL (see
:mod:`papertide.personal.feed_tokens`). A feed holds the first :data:`MAX_ENTRIES` papers of its
list, in the list's order. Fetching a feed never marks its papers seen: a feed reader polls
whether or not anyone reads.

Responses carry an ``ETag`` (a matching ``If-None-Match`` answers 304); public feeds may be
cached for five minutes, the private one only by its reader (``Cache-Control: private``).
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Connection

from papertide import daily, organizations
from papertide.accounts.users import User
from papertide.cards import PaperCard, cards_for_ids
from papertide.config import Settings
from papertide.db.engine import write_transaction
from papertide.errors import InvalidInput, NotFound
from papertide.feeds import MAX_ENTRIES, Feed, FeedFormat, feed_entries, render_feed
from papertide.personal import saves
from papertide.personal.feed import CandidateCache, for_you
from papertide.personal.feed_tokens import create_token, live_token, revoke_tokens
from papertide.personal.feed_tokens import user_for_feed_token as token_user
from papertide.search.filters import SearchFilters, Sort
from papertide.search.results import search_cards
from papertide.search.service import Mode, SearchRequest, SearchService
from papertide.web.auth import LoggedInUser, check_csrf
from papertide.web.deps import AppSettings, DbConnection, engine_of
from papertide.web.params import parse_day, parse_month, parse_week
from papertide.web.rendering import day_url, human_date, month_url, render, week_label, week_url
from papertide.web.routes_search import _categories, _day_or_none

router = APIRouter()
CsrfField = Annotated[str, Form(alias="csrf_token")]
PUBLIC_CACHE = "public, max-age=300"
PRIVATE_CACHE = "private, max-age=300"


def absolute(settings: Settings, path: str) -> str:
    """A local path as an absolute URL of the site (``settings.base_url``)."""
    base: str = settings.base_url
    return base.rstrip("/") + path


def _respond(
    request: Request,
    connection: Connection,
    settings: Settings,
    fmt: FeedFormat,
    *,
    title: str,
    description: str,
    page: str,
    cards: list[PaperCard],
    private: bool = False,
) -> Response:
    """Write the feed of ``cards`` in ``fmt``; ``page`` is the local path of its HTML page."""
    now = datetime.now(UTC)
    query = f"?{request.url.query}" if request.url.query else ""
    feed = Feed(
        title=f"{title} · {settings.site_name}",
        description=description,
        page_url=absolute(settings, page),
        feed_url=absolute(settings, request.url.path + query),
        base_url=absolute(settings, ""),
        site_name=str(settings.site_name),
        entries=feed_entries(connection, cards[:MAX_ENTRIES], now),
        built_at=now,
    )
    body = render_feed(feed, fmt)
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": PRIVATE_CACHE if private else PUBLIC_CACHE}
    if private:
        headers["X-Robots-Tag"] = "noindex"
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=fmt.media_type, headers=headers)


# --- the lists ------------------------------------------------------------------------------


def _newest_day(connection: Connection, settings: Settings) -> date:
    today = daily.today(settings)
    return daily.latest_list_day(connection, today) or today


@router.get("/feeds/daily.{fmt}")
def daily_feed(
    request: Request,
    fmt: str,
    connection: DbConnection,
    settings: AppSettings,
    day: Annotated[str, Query(alias="date", description="YYYY-MM-DD; default: newest")] = "",
) -> Response:
    """A day's list (the newest by default), most upvoted first."""
    form = FeedFormat.parse(fmt)
    if day.strip():
        shown = parse_day(day)
        title, page = f"Daily papers, {human_date(shown)}", day_url(shown)
    else:
        shown, title, page = _newest_day(connection, settings), "Daily papers", "/"
    return _respond(
        request,
        connection,
        settings,
        form,
        title=title,
        description="The papers of the daily list, most upvoted first.",
        page=page,
        cards=daily.day_list(connection, shown),
    )


@router.get("/feeds/weekly.{fmt}")
def weekly_feed(
    request: Request,
    fmt: str,
    connection: DbConnection,
    settings: AppSettings,
    week: Annotated[str, Query(description="YYYY-Www; default: the newest list's week")] = "",
) -> Response:
    form = FeedFormat.parse(fmt)
    label = week.strip() or week_label(_newest_day(connection, settings))
    year, number = parse_week(label)
    first, _last = daily.week_bounds(year, number)
    return _respond(
        request,
        connection,
        settings,
        form,
        title=f"Papers of week {week_label(first)}" if week.strip() else "Weekly papers",
        description="The papers of the week's daily lists, most upvoted first.",
        page=week_url(first),
        cards=daily.week_list(connection, year, number, 1, MAX_ENTRIES).cards,
    )


@router.get("/feeds/monthly.{fmt}")
def monthly_feed(
    request: Request,
    fmt: str,
    connection: DbConnection,
    settings: AppSettings,
    month: Annotated[str, Query(description="YYYY-MM; default: the newest list's month")] = "",
) -> Response:
    form = FeedFormat.parse(fmt)
    if month.strip():
        year, number = parse_month(month)
    else:
        newest = _newest_day(connection, settings)
        year, number = newest.year, newest.month
    first = date(year, number, 1)
    return _respond(
        request,
        connection,
        settings,
        form,
        title=f"Papers of {first:%B %Y}" if month.strip() else "Monthly papers",
        description="The papers of the month's daily lists, most upvoted first.",
        page=month_url(first),
        cards=daily.month_list(connection, year, number, 1, MAX_ENTRIES).cards,
    )


@router.get("/feeds/trending.{fmt}")
def trending_feed(
    request: Request, fmt: str, connection: DbConnection, settings: AppSettings
) -> Response:
    form = FeedFormat.parse(fmt)
    return _respond(
        request,
        connection,
        settings,
        form,
        title="Trending papers",
        description="The papers of the last days' lists, ranked by upvotes and age.",
        page="/papers/trending",
        cards=daily.trending_list(connection, 1, MAX_ENTRIES).cards,
    )


@router.get("/search/feed.{fmt}")
def search_feed(
    request: Request,
    fmt: str,
    connection: DbConnection,
    settings: AppSettings,
    q: Annotated[str, Query(max_length=1000)] = "",
    date_from: Annotated[str, Query(alias="from")] = "",
    date_to: Annotated[str, Query(alias="to")] = "",
    cat: Annotated[list[str] | None, Query()] = None,
    org: str = "",
    code: bool = False,
    listed: bool = False,
    sort: str = "relevance",
    mode: str = "hybrid",
) -> Response:
    """The first results of a search: the same parameters as the ``/search`` page."""
    form = FeedFormat.parse(fmt)
    filters = SearchFilters(
        date_from=_day_or_none(date_from, "from"),
        date_to=_day_or_none(date_to, "to"),
        categories=_categories(cat or []),
        organization=org.strip() or None,
        has_code=code,
        on_list=listed,
    )
    if not q.strip() and not filters.active:
        raise InvalidInput("a search feed needs words (q=...) or a filter (cat=, org=, from=, ...)")
    service: SearchService = request.app.state.search
    search = SearchRequest(q, filters, Sort.parse(sort), 1, MAX_ENTRIES, Mode.parse(mode))
    result = search_cards(service, connection, search)
    return _respond(
        request,
        connection,
        settings,
        form,
        title=f"Search: {q.strip()}" if q.strip() else "Search: filtered papers",
        description=f"The first {MAX_ENTRIES} results of a search.",
        page="/search" + (f"?{request.url.query}" if request.url.query else ""),
        cards=result.cards,
    )


@router.get("/orgs/{slug}/feed.{fmt}")
def organization_feed(
    request: Request, slug: str, fmt: str, connection: DbConnection, settings: AppSettings
) -> Response:
    """An organization's listed papers, newest list day first."""
    form = FeedFormat.parse(fmt)
    org = organizations.organization_by_slug(connection, slug)
    return _respond(
        request,
        connection,
        settings,
        form,
        title=f"{org.name} papers",
        description=org.description or f"The papers of {org.name} on the daily lists.",
        page=f"/orgs/{org.slug}",
        cards=organizations.organization_papers(connection, org, 1, MAX_ENTRIES).cards,
    )


@router.get("/users/{username}/folders/{slug}/feed.{fmt}")
def folder_feed(
    request: Request,
    username: str,
    slug: str,
    fmt: str,
    connection: DbConnection,
    settings: AppSettings,
) -> Response:
    """A public folder, most recently saved first; a private folder is a 404 even to its owner
    (a feed URL is made to be shared and polled without a session)."""
    form = FeedFormat.parse(fmt)
    folder = saves.public_folder(connection, username, slug, None)
    ids = saves.folder_paper_ids(connection, folder)[:MAX_ENTRIES]
    return _respond(
        request,
        connection,
        settings,
        form,
        title=f"{folder.name}, a folder of {folder.owner}",
        description=f"Papers {folder.owner} saved in “{folder.name}”, newest first.",
        page=f"/users/{folder.owner}/folders/{folder.slug}",
        cards=cards_for_ids(connection, ids),
    )


# --- the private "for you" feed ---------------------------------------------------------------


@router.get("/feeds/for-you/{token}.{fmt}")
def for_you_feed(
    request: Request, token: str, fmt: str, connection: DbConnection, settings: AppSettings
) -> Response:
    """A user's "for you" page, for the holder of its secret URL; a revoked or unknown token is
    a 404. Papers in it are not marked seen."""
    form = FeedFormat.parse(fmt)
    user = token_user(connection, token)
    if user is None:
        raise NotFound("no feed at this address (a private feed's link may have been revoked)")
    search: SearchService = request.app.state.search
    embedder = search.embedder(wait=True)
    assert embedder is not None
    cache: CandidateCache = request.app.state.feed_cache
    feed = for_you(connection, user.id, embedder, cache, page=1, page_size=MAX_ENTRIES)
    reasons = {item.paper_id: item.reason for item in feed.items}
    cards = [
        replace(card, reason=reasons[card.paper_id], reason_kind="match")
        for card in cards_for_ids(connection, list(reasons))
    ]
    return _respond(
        request,
        connection,
        settings,
        form,
        title=f"For you ({user.username})",
        description="Papers picked for you, each with the reason.",
        page="/for-you",
        cards=cards,
        private=True,
    )


def _token_page(
    request: Request, connection: Connection, settings: Settings, user: User, raw: str
) -> HTMLResponse:
    urls = {f.value: absolute(settings, f"/feeds/for-you/{raw}.{f.value}") for f in FeedFormat}
    context = {
        "section": "for-you",
        "title": "Your private feed",
        "token": live_token(connection, user),
        "new_urls": urls if raw else None,
        "message": request.query_params.get("done", ""),
    }
    # The page holding a new secret is not kept by caches or the browser's history cache.
    return render(request, "feed_token.html", context, headers={"Cache-Control": "no-store"})


@router.get("/for-you/feed", response_class=HTMLResponse)
def feed_token_page(
    request: Request, connection: DbConnection, settings: AppSettings, user: LoggedInUser
) -> HTMLResponse:
    """The private feed's state: whether a link is live, since when; replace or revoke it."""
    return _token_page(request, connection, settings, user, "")


@router.post("/for-you/feed", response_class=HTMLResponse)
def create_feed_token(
    request: Request, settings: AppSettings, user: LoggedInUser, csrf_token: CsrfField = ""
) -> HTMLResponse:
    """A new secret feed link (the previous one stops working), shown this once."""
    check_csrf(request, csrf_token)
    with write_transaction(engine_of(request)) as connection:
        _token, raw = create_token(connection, user)
        return _token_page(request, connection, settings, user, raw)


@router.post("/for-you/feed/revoke")
def revoke_feed_token(request: Request, user: LoggedInUser, csrf_token: CsrfField = "") -> Response:
    check_csrf(request, csrf_token)
    with write_transaction(engine_of(request)) as connection:
        revoke_tokens(connection, user)
    return RedirectResponse("/for-you/feed?done=revoked", status_code=303)
