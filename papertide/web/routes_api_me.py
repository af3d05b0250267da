"""JSON API for the token's user: the account, the "for you" feed, saves and folders, and the
digest subscription's preferences."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy import Connection, select

from papertide.accounts.users import User
from papertide.cards import cards_for_ids
from papertide.community.papers import canonical_id
from papertide.db.engine import write_transaction
from papertide.db.schema import folders, papers, saved_papers
from papertide.digest import subscriptions
from papertide.errors import NotFound, NotReady
from papertide.personal import saves
from papertide.personal.feed import CandidateCache, for_you
from papertide.personal.interests import RuleSet
from papertide.search.service import SearchService
from papertide.web import api_models as m
from papertide.web.deps import DbConnection, engine_of
from papertide.web.pagination import Key, Keyset
from papertide.web.routes_api_common import (
    NOT_FOUND,
    TOKEN_ERRORS,
    TOKEN_LIST_ERRORS,
    TOKEN_READ_ERRORS,
    ArxivId,
    CurrentCaller,
    CursorParam,
    PageLimit,
    TokenUser,
    answer,
    card_fields,
    cursors,
    keyset_page,
    page_of,
    scope_of,
    voted_set,
    where_after,
)

router = APIRouter(prefix="/me", tags=["me"])

SAVE_ORDER = Keyset(
    (
        Key(saved_papers.c.saved_at, "datetime", descending=True),
        Key(saved_papers.c.folder_id, "int", descending=True),
        Key(saved_papers.c.paper_id, "int", descending=True),
    )
)
FolderParam = Annotated[str, Query(max_length=80, description="A folder's short name.")]


@router.get("", response_model=m.Me, responses=TOKEN_READ_ERRORS)
def me(request: Request, user: TokenUser) -> Response:
    """The account the token belongs to."""
    body = m.Me(
        username=user.username,
        display_name=user.display_name,
        email=user.email,
        role=user.role.value,
        votes_public=user.votes_public,
        created_at=user.created_at,
    )
    return answer(request, body)


@router.get(
    "/feed",
    response_model=m.FeedList,
    responses={**TOKEN_LIST_ERRORS, 503: {"description": "The embedding model is not loaded."}},
)
def feed(
    request: Request,
    connection: DbConnection,
    caller: CurrentCaller,
    user: TokenUser,
    limit: PageLimit = 20,
    cursor: CursorParam = None,
) -> Response:
    """Your "for you" feed: new papers ranked for you, each with its score and reason."""
    scope = f"{scope_of(request, with_limit=True)}|user:{user.id}"
    offset = cursors(request).offset(scope, cursor)
    search: SearchService = request.app.state.search
    embedder = search.embedder(wait=True)
    if embedder is None:
        raise NotReady("the embedding model is not loaded; the feed needs it")
    cache: CandidateCache = request.app.state.feed_cache
    page = for_you(connection, user.id, embedder, cache, page=offset // limit + 1, page_size=limit)
    by_id = {item.paper_id: item for item in page.items}
    cards = cards_for_ids(connection, list(by_id))
    voted = voted_set(connection, caller, cards)
    items = [
        m.FeedCard(
            **card_fields(card, voted),
            score=round(by_id[card.paper_id].score, 4),
            personal=round(by_id[card.paper_id].personal, 4),
            trending=round(by_id[card.paper_id].trending, 4),
            reason=by_id[card.paper_id].reason,
        )
        for card in cards
    ]
    more = offset + limit < page.total
    next_cursor = cursors(request).make(scope, [offset + limit]) if more else None
    body = m.FeedList(items=items, next_cursor=next_cursor, total=page.total, cold_start=page.cold)
    return answer(request, body, next_cursor=next_cursor)


# --- saves and folders -----------------------------------------------------------------------


@router.get("/saves", response_model=m.SaveList, responses=TOKEN_LIST_ERRORS)
def list_saves(
    request: Request,
    connection: DbConnection,
    caller: CurrentCaller,
    user: TokenUser,
    folder: FolderParam = "",
    limit: PageLimit = 50,
    cursor: CursorParam = None,
) -> Response:
    """The papers you saved, most recent first (a paper in two folders shows twice)."""
    scope, after = keyset_page(request, SAVE_ORDER, cursor)
    statement = (
        select(
            saved_papers.c.paper_id,
            saved_papers.c.folder_id,
            saved_papers.c.saved_at,
            folders.c.slug,
        )
        .join(folders, folders.c.id == saved_papers.c.folder_id)
        .join(papers, papers.c.id == saved_papers.c.paper_id)
        .where(saved_papers.c.user_id == user.id, papers.c.hidden_at.is_(None))
    )
    if folder:
        statement = statement.where(folders.c.slug == folder)
    statement = where_after(statement, after).order_by(*SAVE_ORDER.order_by()).limit(limit + 1)
    rows, last = page_of(list(connection.execute(statement)), limit)
    cards = {c.paper_id: c for c in cards_for_ids(connection, [r.paper_id for r in rows])}
    voted = voted_set(connection, caller, list(cards.values()))
    items = [
        m.SavedPaper(
            paper=m.PaperCard(**card_fields(cards[row.paper_id], voted)),
            folder=row.slug,
            saved_at=row.saved_at,
        )
        for row in rows
        if row.paper_id in cards
    ]
    next_cursor = None
    if last is not None:
        values = [last.saved_at, last.folder_id, last.paper_id]
        next_cursor = cursors(request).make(scope, values)
    return answer(
        request, m.SaveList(items=items, next_cursor=next_cursor), next_cursor=next_cursor
    )


@router.post(
    "/saves",
    status_code=201,
    response_model=m.SaveState,
    responses={**TOKEN_ERRORS, **NOT_FOUND},
)
def save(request: Request, user: TokenUser, wanted: m.SaveIn) -> Response:
    """Save a paper into a folder (``saved`` by default, made on first use); idempotent."""
    with write_transaction(engine_of(request)) as connection:
        saves.save_paper(connection, user, wanted.arxiv_id, wanted.folder)
    body = m.SaveState(arxiv_id=canonical_id(wanted.arxiv_id), folder=wanted.folder, saved=True)
    return answer(request, body, status=201)


@router.delete(
    "/saves/{arxiv_id:arxiv}",
    response_model=m.SaveState,
    responses={**TOKEN_ERRORS, **NOT_FOUND},
)
def unsave(
    request: Request, user: TokenUser, arxiv_id: ArxivId, folder: FolderParam = ""
) -> Response:
    """Take a paper out of one folder, or (no ``folder``) out of all; idempotent."""
    with write_transaction(engine_of(request)) as connection:
        saves.unsave_paper(connection, user, arxiv_id, folder or None)
    body = m.SaveState(arxiv_id=canonical_id(arxiv_id), folder=folder or None, saved=False)
    return answer(request, body)


@router.get("/folders", response_model=m.FolderList, responses=TOKEN_READ_ERRORS)
def list_folders(request: Request, connection: DbConnection, user: TokenUser) -> Response:
    """Your folders, oldest first."""
    items = [
        m.Folder(slug=f.slug, name=f.name, public=f.public, paper_count=f.papers)
        for f in saves.user_folders(connection, user)
    ]
    return answer(request, m.FolderList(items=items))


# --- the digest subscription -----------------------------------------------------------------


def _rules(rules: RuleSet) -> m.Rules:
    return m.Rules(**{k: list(v) for k, v in asdict(rules).items()})


def _subscription(found: subscriptions.Subscription) -> m.Subscription:
    return m.Subscription.model_validate(
        {
            "email": found.email,
            "state": found.state.value,
            "frequency": found.frequency,
            "size": found.size,
            "personal": found.personal,
            "include": _rules(found.include),
            "exclude": _rules(found.exclude),
        }
    )


def _own_subscription(connection: Connection, user: User) -> subscriptions.Subscription:
    found = subscriptions.for_user(connection, user.id)
    if found is None:
        raise NotFound(
            "no digest subscription belongs to your account: subscribe at /subscribe while "
            "logged in, with your account's address"
        )
    return found


@router.get(
    "/subscription", response_model=m.Subscription, responses={**TOKEN_READ_ERRORS, **NOT_FOUND}
)
def subscription(request: Request, connection: DbConnection, user: TokenUser) -> Response:
    """Your email digest subscription and its preferences."""
    return answer(request, _subscription(_own_subscription(connection, user)))


@router.put("/subscription", response_model=m.Subscription, responses={**TOKEN_ERRORS, **NOT_FOUND})
def update_subscription(
    request: Request, user: TokenUser, preferences: m.SubscriptionIn
) -> Response:
    """Change what your digest holds and how often it comes."""
    with write_transaction(engine_of(request)) as connection:
        found = _own_subscription(connection, user)
        updated = subscriptions.update_preferences(
            connection,
            found,
            frequency=preferences.frequency,
            size=preferences.size,
            personal=preferences.personal,
            include=preferences.include.model_dump(),
            exclude=preferences.exclude.model_dump(),
        )
    return answer(request, _subscription(updated))
