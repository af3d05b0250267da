"""JSON API: comments (read; write and delete with a token), votes, organizations."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from sqlalchemy import and_, func, select

from papertide import organizations as orgs
from papertide.accounts.ratelimit import enforce
from papertide.cards import card_select, fetch_cards, visible_entry
from papertide.community import comments, votes
from papertide.community.papers import paper_row
from papertide.db.engine import write_transaction
from papertide.db.schema import comments as comments_table
from papertide.db.schema import daily_entries, organization_members, organizations, papers, users
from papertide.web import api_models as m
from papertide.web.deps import DbConnection, engine_of
from papertide.web.pagination import Key, Keyset
from papertide.web.routes_api_common import (
    LIST_ERRORS,
    MAX_ID,
    NOT_FOUND,
    READ_ERRORS,
    TOKEN_ERRORS,
    ArxivId,
    CurrentCaller,
    CursorParam,
    PageLimit,
    Responses,
    TokenUser,
    answer,
    card_models,
    cursors,
    keyset_page,
    page_of,
    where_after,
)

router = APIRouter(tags=["community"])

COMMENT_ORDER = Keyset(
    (Key(comments_table.c.created_at, "datetime"), Key(comments_table.c.id, "int"))
)
_name_key = func.lower(organizations.c.name)
ORGANIZATION_ORDER = Keyset((Key(_name_key, "str"), Key(organizations.c.slug, "str")))
ORG_PAPER_ORDER = Keyset(
    (
        Key(daily_entries.c.day, "date", descending=True),
        Key(papers.c.upvotes, "int", descending=True),
        Key(papers.c.arxiv_id, "str"),
    )
)
WRITE_ERRORS: Responses = {**TOKEN_ERRORS, **NOT_FOUND}
Slug = Annotated[
    str, Path(max_length=100, description="The organization's short name.", examples=["lab"])
]


def comment_model(comment: comments.Comment) -> m.CommentOut:
    gone = comment.deleted
    return m.CommentOut(
        id=comment.id,
        arxiv_id=comment.arxiv_id,
        parent_id=comment.parent_id,
        author=None if gone else comment.author,
        body_markdown="" if gone else comment.body_markdown,
        body_html="" if gone else comment.body_html,
        created_at=comment.created_at,
        edited_at=comment.edited_at,
        deleted=gone,
    )


# --- comments ----------------------------------------------------------------------------------


@router.get(
    "/papers/{arxiv_id:arxiv}/comments",
    response_model=m.CommentList,
    responses={**LIST_ERRORS, **NOT_FOUND},
)
def list_comments(
    request: Request,
    connection: DbConnection,
    caller: CurrentCaller,
    arxiv_id: ArxivId,
    limit: PageLimit = 50,
    cursor: CursorParam = None,
) -> Response:
    """A paper's comments, oldest first; deleted ones keep their place (replies hang from
    them) with their author and text blanked."""
    paper = paper_row(connection, arxiv_id)
    scope, after = keyset_page(request, COMMENT_ORDER, cursor)
    statement = (
        select(
            comments_table.c.id,
            papers.c.arxiv_id,
            papers.c.title.label("paper_title"),
            comments_table.c.parent_id,
            comments_table.c.user_id,
            users.c.username.label("author"),
            comments_table.c.body_markdown,
            comments_table.c.body_html,
            comments_table.c.created_at,
            comments_table.c.edited_at,
            comments_table.c.deleted_at,
        )
        .select_from(
            comments_table.join(users, users.c.id == comments_table.c.user_id).join(
                papers, papers.c.id == comments_table.c.paper_id
            )
        )
        .where(comments_table.c.paper_id == paper.id)
    )
    statement = where_after(statement, after).order_by(*COMMENT_ORDER.order_by()).limit(limit + 1)
    found = [comments.Comment(**row._mapping) for row in connection.execute(statement)]
    shown, last = page_of(found, limit)
    next_cursor = None
    if last is not None:
        next_cursor = cursors(request).make(scope, [last.created_at, last.id])
    body = m.CommentList(items=[comment_model(c) for c in shown], next_cursor=next_cursor)
    return answer(request, body, next_cursor=next_cursor)


@router.post(
    "/papers/{arxiv_id:arxiv}/comments",
    status_code=201,
    response_model=m.CommentOut,
    responses=WRITE_ERRORS,
)
def post_comment(
    request: Request, user: TokenUser, arxiv_id: ArxivId, comment: m.CommentIn
) -> Response:
    """Comment on a paper, or reply to a comment (``parent_id``); at most 10 in 10 minutes."""
    enforce(engine_of(request), [(f"comment:user:{user.id}", comments.POST_LIMIT)])
    with write_transaction(engine_of(request)) as connection:
        made = comments.post_comment(connection, user, arxiv_id, comment.body, comment.parent_id)
    return answer(request, comment_model(made), status=201)


@router.delete("/comments/{comment_id}", response_model=m.CommentOut, responses=WRITE_ERRORS)
def delete_comment(
    request: Request,
    user: TokenUser,
    comment_id: Annotated[int, Path(ge=1, le=MAX_ID, description="The comment's id.")],
) -> Response:
    """Delete your own comment (moderators: anyone's). Deleting twice changes nothing."""
    with write_transaction(engine_of(request)) as connection:
        gone = comments.delete_comment(connection, user, comment_id)
    return answer(request, comment_model(gone))


# --- votes -------------------------------------------------------------------------------------


def _vote_model(state: votes.VoteState) -> m.VoteState:
    return m.VoteState(arxiv_id=state.arxiv_id, upvotes=state.upvotes, voted=state.voted)


@router.put("/papers/{arxiv_id:arxiv}/vote", response_model=m.VoteState, responses=WRITE_ERRORS)
def upvote(request: Request, user: TokenUser, arxiv_id: ArxivId) -> Response:
    """Upvote a paper (voting twice changes nothing)."""
    with write_transaction(engine_of(request)) as connection:
        state = votes.upvote(connection, user, arxiv_id)
    return answer(request, _vote_model(state))


@router.delete("/papers/{arxiv_id:arxiv}/vote", response_model=m.VoteState, responses=WRITE_ERRORS)
def unvote(request: Request, user: TokenUser, arxiv_id: ArxivId) -> Response:
    """Take your upvote back (idempotent)."""
    with write_transaction(engine_of(request)) as connection:
        state = votes.unvote(connection, user, arxiv_id)
    return answer(request, _vote_model(state))


# --- organizations ------------------------------------------------------------------------------


def _member_count() -> Any:
    return (
        select(func.count())
        .select_from(organization_members)
        .where(organization_members.c.organization_id == organizations.c.id)
        .scalar_subquery()
        .label("member_count")
    )


@router.get("/organizations", response_model=m.OrganizationList, responses=LIST_ERRORS)
def list_organizations(
    request: Request,
    connection: DbConnection,
    limit: PageLimit = 50,
    cursor: CursorParam = None,
) -> Response:
    """The labs and companies papers belong to, by name."""
    scope, after = keyset_page(request, ORGANIZATION_ORDER, cursor)
    statement = select(
        organizations.c.slug,
        organizations.c.name,
        organizations.c.description,
        organizations.c.avatar_url,
        organizations.c.created_at,
        _member_count(),
        _name_key.label("name_key"),
    )
    statement = where_after(statement, after).order_by(*ORGANIZATION_ORDER.order_by())
    rows, last = page_of(list(connection.execute(statement.limit(limit + 1))), limit)
    next_cursor = None
    if last is not None:
        next_cursor = cursors(request).make(scope, [last.name_key, last.slug])
    items = [
        m.Organization(**{k: v for k, v in row._mapping.items() if k != "name_key"}) for row in rows
    ]
    body = m.OrganizationList(items=items, next_cursor=next_cursor)
    return answer(request, body, next_cursor=next_cursor)


@router.get(
    "/organizations/{slug}",
    response_model=m.OrganizationDetail,
    responses={**READ_ERRORS, **NOT_FOUND},
)
def organization(request: Request, connection: DbConnection, slug: Slug) -> Response:
    """One organization and its members (admins first)."""
    found = orgs.organization_by_slug(connection, slug)
    members = orgs.members(connection, found)
    body = m.OrganizationDetail(
        slug=found.slug,
        name=found.name,
        description=found.description,
        avatar_url=found.avatar_url,
        created_at=found.created_at,
        member_count=len(members),
        members=[
            m.Member(
                username=x.username,
                display_name=x.display_name,
                role=x.role.value,
                added_at=x.added_at,
            )
            for x in members
        ],
        url=f"/orgs/{found.slug}",
    )
    return answer(request, body)


@router.get(
    "/organizations/{slug}/papers",
    response_model=m.PaperList,
    responses={**LIST_ERRORS, **NOT_FOUND},
)
def organization_papers(
    request: Request,
    connection: DbConnection,
    caller: CurrentCaller,
    slug: Slug,
    limit: PageLimit = 50,
    cursor: CursorParam = None,
) -> Response:
    """The organization's listed papers, each once (on its latest list day), newest first."""
    found = orgs.organization_by_slug(connection, slug)
    scope, after = keyset_page(request, ORG_PAPER_ORDER, cursor)
    latest = (
        select(daily_entries.c.paper_id, func.max(daily_entries.c.day).label("day"))
        .join(papers, papers.c.id == daily_entries.c.paper_id)
        .where(papers.c.organization_id == found.id, visible_entry())
        .group_by(daily_entries.c.paper_id)
        .subquery()
    )
    statement = card_select().select_from(
        latest.join(
            daily_entries,
            and_(
                daily_entries.c.paper_id == latest.c.paper_id,
                daily_entries.c.day == latest.c.day,
            ),
        )
        .join(papers, papers.c.id == daily_entries.c.paper_id)
        .join(organizations, organizations.c.id == papers.c.organization_id)
    )
    statement = where_after(statement, after).order_by(*ORG_PAPER_ORDER.order_by()).limit(limit + 1)
    cards, last = page_of(fetch_cards(connection, statement), limit)
    next_cursor = None
    if last is not None:
        values = [last.listed_on, last.upvotes, last.arxiv_id]
        next_cursor = cursors(request).make(scope, values)
    body = m.PaperList(items=card_models(connection, caller, cards), next_cursor=next_cursor)
    return answer(request, body, next_cursor=next_cursor)
