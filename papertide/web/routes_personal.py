"""The personal pages: "For you", interests (onboarding), saves, folders, "not interested".

Forms work without JavaScript (posts answer 303 back to the page they came from); with
``Accept: application/json`` they answer JSON, like the vote buttons.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy import select

from papertide.accounts.users import User
from papertide.cards import PaperCard, cards_for_ids, page_count
from papertide.daily import trending_list
from papertide.db.engine import write_transaction
from papertide.db.schema import papers
from papertide.errors import InvalidInput, NotFound
from papertide.personal import marks, saves
from papertide.personal.feed import CandidateCache, FeedPage, for_you
from papertide.personal.interests import (
    FIELDS,
    load_interests,
    make_interests,
    save_interests,
    split_list,
)
from papertide.search.service import SearchService
from papertide.web.auth import LoggedInUser, SessionOrTokenUser, check_csrf, viewer_of
from papertide.web.deps import DbConnection, back_to, engine_of
from papertide.web.errors import wants_json
from papertide.web.rendering import paper_url, render
from papertide.web.routes_api_common import JSON_OBJECT, error_doc
from papertide.web.routes_lists import Pager, voted_on

router = APIRouter()
CsrfField = Annotated[str, Form(alias="csrf_token")]
PAGE_SIZE = 20


def _cache(request: Request) -> CandidateCache:
    cache: CandidateCache = request.app.state.feed_cache
    return cache


def _feed(request: Request, connection: Any, user: User, page: int, size: int) -> FeedPage:
    search: SearchService = request.app.state.search
    embedder = search.embedder(wait=True)
    assert embedder is not None
    return for_you(connection, user.id, embedder, _cache(request), page=page, page_size=size)


def _feed_cards(connection: Any, feed: FeedPage) -> list[PaperCard]:
    reasons = {item.paper_id: item.reason for item in feed.items}
    return [
        replace(card, reason=reasons[card.paper_id], reason_kind="match")
        for card in cards_for_ids(connection, list(reasons))
    ]


@router.get("/for-you", response_class=HTMLResponse)
def for_you_page(
    request: Request, connection: DbConnection, user: LoggedInUser, page: int = 1
) -> HTMLResponse:
    if page < 1:
        raise InvalidInput(f"page {page} does not exist (pages start at 1)")
    feed = _feed(request, connection, user, page, PAGE_SIZE)
    pages = page_count(feed.total, PAGE_SIZE)
    if page > pages:
        raise NotFound(f"page {page} of your feed does not exist: it has {pages}")
    cards = _feed_cards(connection, feed)
    context = {
        "section": "for-you",
        "title": "For you",
        "feed": feed,
        "cards": cards,
        "voted": voted_on(request, connection, cards),
        "saved": saves.saved_arxiv_ids(connection, user, [c.arxiv_id for c in cards]),
        "start": (page - 1) * PAGE_SIZE,
        "pager": Pager(
            page=page,
            pages=pages,
            previous=f"/for-you?page={page - 1}" if page > 1 else None,
            next=f"/for-you?page={page + 1}" if page < pages else None,
        ),
    }
    return render(request, "for_you.html", context)


@router.get(
    "/api/me/feed",
    responses={
        200: JSON_OBJECT,
        400: error_doc("Invalid parameters (the message names the one at fault)."),
        401: error_doc("Neither a valid API token nor a logged-in session."),
    },
)
def api_feed(
    request: Request,
    connection: DbConnection,
    user: SessionOrTokenUser,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> JSONResponse:
    """The user's feed: papers with score, personal and trending parts, and reason."""
    feed = _feed(request, connection, user, page, limit)
    ids = [item.paper_id for item in feed.items]
    arxiv = {
        row.id: (row.arxiv_id, row.title)
        for row in connection.execute(
            select(papers.c.id, papers.c.arxiv_id, papers.c.title).where(papers.c.id.in_(ids))
        )
    }
    return JSONResponse(
        {
            "total": feed.total,
            "coldStart": feed.cold,
            "papers": [
                {
                    "id": arxiv[item.paper_id][0],
                    "title": arxiv[item.paper_id][1],
                    "score": round(item.score, 4),
                    "personal": round(item.personal, 4),
                    "trending": round(item.trending, 4),
                    "reason": item.reason,
                }
                for item in feed.items
            ],
        }
    )


# --- marks and saves ---------------------------------------------------------------------------


def _done(request: Request, arxiv_id: str, **state: Any) -> Response:
    if wants_json(request):
        return JSONResponse({"id": arxiv_id, **state})
    return RedirectResponse(back_to(request, paper_url(arxiv_id)), status_code=303)


@router.post("/papers/{arxiv_id:path}/dismiss")
def dismiss(
    request: Request, arxiv_id: str, user: LoggedInUser, csrf_token: CsrfField = ""
) -> Response:
    """ "Not interested": gone from the feed, and a negative for the ranker."""
    check_csrf(request, csrf_token)
    with write_transaction(engine_of(request)) as connection:
        marks.dismiss(connection, user, arxiv_id)
    return _done(request, arxiv_id, dismissed=True)


@router.post("/papers/{arxiv_id:path}/undismiss")
def undismiss(
    request: Request, arxiv_id: str, user: LoggedInUser, csrf_token: CsrfField = ""
) -> Response:
    check_csrf(request, csrf_token)
    with write_transaction(engine_of(request)) as connection:
        marks.undismiss(connection, user, arxiv_id)
    return _done(request, arxiv_id, dismissed=False)


@router.post("/papers/{arxiv_id:path}/save")
def save(
    request: Request,
    arxiv_id: str,
    user: LoggedInUser,
    csrf_token: CsrfField = "",
    folder: Annotated[str, Form()] = saves.DEFAULT_SLUG,
) -> Response:
    check_csrf(request, csrf_token)
    with write_transaction(engine_of(request)) as connection:
        saves.save_paper(connection, user, arxiv_id, folder or saves.DEFAULT_SLUG)
    return _done(request, arxiv_id, saved=True)


@router.post("/papers/{arxiv_id:path}/unsave")
def unsave(
    request: Request,
    arxiv_id: str,
    user: LoggedInUser,
    csrf_token: CsrfField = "",
    folder: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf_token)
    with write_transaction(engine_of(request)) as connection:
        saves.unsave_paper(connection, user, arxiv_id, folder or None)
    return _done(request, arxiv_id, saved=False)


# --- interests (also the onboarding page) ---------------------------------------------------


def _float(value: str, name: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise InvalidInput(f"{name} {value!r} is not a number") from None


def _int(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise InvalidInput(f"{name} {value!r} is not a whole number") from None


@router.get("/settings/interests", response_class=HTMLResponse)
def interests_page(
    request: Request, connection: DbConnection, user: LoggedInUser, saved: str = ""
) -> HTMLResponse:
    interests = load_interests(connection, user.id)
    picks = _picks(connection) if not interests.onboarded else []
    context = {
        "section": "for-you",
        "title": "Your interests",
        "interests": interests,
        "fields": FIELDS,
        "picks": picks,
        "saved_message": bool(saved),
        "folders": saves.user_folders(connection, user),
    }
    return render(request, "interests.html", context)


def _picks(connection: Any) -> list[PaperCard]:
    """Papers to pick from on the onboarding page: trending, else the most upvoted."""
    cards = trending_list(connection, 1, 12).cards
    if cards:
        return cards
    top = connection.execute(
        select(papers.c.id)
        .where(papers.c.hidden_at.is_(None))
        .order_by(papers.c.upvotes.desc(), papers.c.published_at.desc())
        .limit(12)
    ).scalars()
    return cards_for_ids(connection, list(top))


@router.post("/settings/interests")
async def save_interests_form(request: Request, user: LoggedInUser) -> Response:
    form = await request.form()
    check_csrf(request, str(form.get("csrf_token", "")))

    def text(name: str) -> str:
        return str(form.get(name, ""))

    value = make_interests(
        topics=split_list(text("topics")),
        include={f: split_list(text(f"include_{f}")) for f in FIELDS},
        exclude={f: split_list(text(f"exclude_{f}")) for f in FIELDS},
        threshold=_float(text("threshold") or "0", "threshold"),
        trending_weight=_float(text("trending_weight") or "0.3", "trending weight"),
        window_days=_int(text("window_days") or "7", "window"),
    )
    picked = [str(v) for v in form.getlist("pick")]
    with write_transaction(engine_of(request)) as connection:
        save_interests(connection, user.id, value)
        for arxiv_id in picked[:20]:
            saves.save_paper(connection, user, arxiv_id)
    return RedirectResponse(
        "/for-you" if picked or value.topics else "/settings/interests?saved=1", status_code=303
    )


# --- folders -----------------------------------------------------------------------------------


@router.post("/folders")
def create_folder(
    request: Request,
    user: LoggedInUser,
    csrf_token: CsrfField = "",
    name: Annotated[str, Form()] = "",
    public: Annotated[bool, Form()] = False,
) -> Response:
    check_csrf(request, csrf_token)
    with write_transaction(engine_of(request)) as connection:
        slug = saves.create_folder(connection, user, name, public=public)
    return RedirectResponse(f"/users/{user.username}/folders/{slug}", status_code=303)


@router.get("/users/{username}/folders/{slug}", response_class=HTMLResponse)
def folder_page(
    request: Request, username: str, slug: str, connection: DbConnection
) -> HTMLResponse:
    viewer = viewer_of(request).user
    folder = saves.public_folder(connection, username, slug, viewer)
    cards = cards_for_ids(connection, saves.folder_paper_ids(connection, folder))
    context = {
        "title": f"{folder.name} · {folder.owner}",
        "folder": folder,
        "cards": cards,
        "voted": voted_on(request, connection, cards),
        "own": viewer is not None and viewer.username == folder.owner,
    }
    return render(request, "folder.html", context)


@router.post("/users/{username}/folders/{slug}/{action}")
def folder_action(
    request: Request,
    username: str,
    slug: str,
    action: str,
    user: LoggedInUser,
    csrf_token: CsrfField = "",
) -> Response:
    """follow / unfollow (others' public folders); publish / unpublish / delete (your own)."""
    check_csrf(request, csrf_token)
    with write_transaction(engine_of(request)) as connection:
        if action == "follow":
            saves.follow(connection, user, username, slug)
        elif action == "unfollow":
            saves.unfollow(connection, user, username, slug)
        elif username != user.username:
            raise NotFound(f"you have no folder {slug!r}")
        elif action in ("publish", "unpublish"):
            saves.set_public(connection, user, slug, action == "publish")
        elif action == "delete":
            saves.delete_folder(connection, user, slug)
            return RedirectResponse("/settings/interests", status_code=303)
        else:
            raise NotFound(f"no folder action {action!r}")
    return RedirectResponse(f"/users/{username}/folders/{slug}", status_code=303)
