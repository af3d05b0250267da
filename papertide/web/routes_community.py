"""Upvotes, comments and profile pages.

Vote and comment forms work without JavaScript (a form post answers 303, back to the page it
came from); ``community.js`` sends the same posts with ``fetch`` and ``Accept:
application/json`` and gets JSON back, so counts change in place.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from papertide.accounts.ratelimit import enforce
from papertide.community import comments, profiles, votes
from papertide.db.engine import write_transaction
from papertide.errors import InvalidInput
from papertide.moderation import profile_extra
from papertide.web.auth import LoggedInUser, check_csrf, viewer_of
from papertide.web.deps import AppSettings, DbConnection, back_to, engine_of
from papertide.web.errors import wants_json
from papertide.web.rendering import paper_url, render

router = APIRouter()

CsrfField = Annotated[str, Form(alias="csrf_token")]
BodyField = Annotated[str, Form()]


def _vote_response(request: Request, state: votes.VoteState) -> Response:
    if wants_json(request):
        return JSONResponse({"upvotes": state.upvotes, "voted": state.voted})
    return RedirectResponse(back_to(request, paper_url(state.arxiv_id)), status_code=303)


@router.post("/papers/{arxiv_id:path}/vote")
def vote(
    request: Request, arxiv_id: str, user: LoggedInUser, csrf_token: CsrfField = ""
) -> Response:
    check_csrf(request, csrf_token)
    with write_transaction(engine_of(request)) as connection:
        state = votes.upvote(connection, user, arxiv_id)
    return _vote_response(request, state)


@router.post("/papers/{arxiv_id:path}/unvote")
def unvote(
    request: Request, arxiv_id: str, user: LoggedInUser, csrf_token: CsrfField = ""
) -> Response:
    check_csrf(request, csrf_token)
    with write_transaction(engine_of(request)) as connection:
        state = votes.unvote(connection, user, arxiv_id)
    return _vote_response(request, state)


def _comment_json(comment: comments.Comment) -> dict[str, Any]:
    return {
        "id": comment.id,
        "arxiv_id": comment.arxiv_id,
        "parent_id": comment.parent_id,
        "author": comment.author,
        "body_html": "" if comment.deleted else comment.body_html,
        "created_at": comment.created_at.isoformat(),
        "edited_at": comment.edited_at.isoformat() if comment.edited_at else None,
        "deleted": comment.deleted,
    }


def _comment_response(request: Request, comment: comments.Comment, status: int = 200) -> Response:
    if wants_json(request):
        return JSONResponse(_comment_json(comment), status_code=status)
    target = f"{paper_url(comment.arxiv_id)}#comment-{comment.id}"
    return RedirectResponse(target, status_code=303)


def _parent_id(value: str) -> int | None:
    value = value.strip()
    if not value:
        return None
    if not value.isdigit():
        raise InvalidInput(f"parent_id {value!r} is not a comment id")
    return int(value)


@router.post("/papers/{arxiv_id:path}/comments")
def post_comment(
    request: Request,
    arxiv_id: str,
    user: LoggedInUser,
    csrf_token: CsrfField = "",
    body: BodyField = "",
    parent_id: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf_token)
    parent = _parent_id(parent_id)
    enforce(engine_of(request), [(f"comment:user:{user.id}", comments.POST_LIMIT)])
    with write_transaction(engine_of(request)) as connection:
        comment = comments.post_comment(connection, user, arxiv_id, body, parent)
    return _comment_response(request, comment, 201)


@router.post("/comments/{comment_id}/edit")
def edit_comment(
    request: Request,
    comment_id: int,
    user: LoggedInUser,
    settings: AppSettings,
    csrf_token: CsrfField = "",
    body: BodyField = "",
) -> Response:
    check_csrf(request, csrf_token)
    with write_transaction(engine_of(request)) as connection:
        comment = comments.edit_comment(
            connection, user, comment_id, body, settings.comment_edit_minutes
        )
    return _comment_response(request, comment)


@router.post("/comments/{comment_id}/delete")
def delete_comment(
    request: Request, comment_id: int, user: LoggedInUser, csrf_token: CsrfField = ""
) -> Response:
    check_csrf(request, csrf_token)
    with write_transaction(engine_of(request)) as connection:
        comment = comments.delete_comment(connection, user, comment_id)
    return _comment_response(request, comment)


@router.get("/users/{username}")
def profile_page(request: Request, username: str, connection: DbConnection) -> Response:
    shown = profiles.profile(connection, username, viewer_of(request).user)
    context = {"title": shown.user.username, "profile": shown}
    context["extra"] = profile_extra(connection, shown.user, viewer_of(request).user)
    return render(request, "profile.html", context)
