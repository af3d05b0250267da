"""Moderation pages and actions (moderators), and the audit log (administrators).

Every action answers 303 back to the page its form was on (the moderation queue, a paper page,
a profile), and is recorded in the audit log in its own transaction by the domain layer.
Non-moderators get 403; objects that do not exist 404.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from papertide import audit, claims, moderation, submissions
from papertide.cards import page_count
from papertide.db.engine import write_transaction
from papertide.errors import NotFound
from papertide.web.auth import Admin, Moderator, check_csrf
from papertide.web.deps import AppSettings, DbConnection, back_to, engine_of
from papertide.web.rendering import render

router = APIRouter()

AUDIT_PAGE = 50
CsrfField = Annotated[str, Form(alias="csrf_token")]
TextField = Annotated[str, Form()]
PageNumber = Annotated[int, Query(ge=1, le=1_000_000, description="Page number, from 1.")]


def _back(request: Request) -> RedirectResponse:
    """303 to the local page the form was on, else the moderation queue."""
    return RedirectResponse(back_to(request, "/moderation"), status_code=303)


@router.get("/moderation")
def moderation_page(request: Request, user: Moderator, connection: DbConnection) -> Response:
    context = {
        "title": "Moderation",
        "section": "moderation",
        "queue": moderation.queue(connection, user),
    }
    return render(request, "moderation.html", context)


@router.post("/moderation/papers/hide")
def hide_paper(
    request: Request,
    user: Moderator,
    csrf_token: CsrfField = "",
    arxiv_id: TextField = "",
    reason: TextField = "",
) -> Response:
    check_csrf(request, csrf_token)
    with write_transaction(engine_of(request)) as connection:
        moderation.hide_paper(connection, user, arxiv_id, reason)
    return _back(request)


@router.post("/moderation/papers/unhide")
def unhide_paper(
    request: Request, user: Moderator, csrf_token: CsrfField = "", arxiv_id: TextField = ""
) -> Response:
    check_csrf(request, csrf_token)
    with write_transaction(engine_of(request)) as connection:
        moderation.unhide_paper(connection, user, arxiv_id)
    return _back(request)


@router.post("/moderation/users/{username}/suspend")
def suspend_user(
    request: Request, username: str, user: Moderator, csrf_token: CsrfField = ""
) -> Response:
    check_csrf(request, csrf_token)
    with write_transaction(engine_of(request)) as connection:
        moderation.suspend_user(connection, user, username, suspend=True)
    return _back(request)


@router.post("/moderation/users/{username}/unsuspend")
def unsuspend_user(
    request: Request, username: str, user: Moderator, csrf_token: CsrfField = ""
) -> Response:
    check_csrf(request, csrf_token)
    with write_transaction(engine_of(request)) as connection:
        moderation.suspend_user(connection, user, username, suspend=False)
    return _back(request)


@router.post("/moderation/submissions/{entry_id}/{decision}")
def decide_submission(
    request: Request,
    entry_id: int,
    decision: str,
    user: Moderator,
    settings: AppSettings,
    csrf_token: CsrfField = "",
) -> Response:
    check_csrf(request, csrf_token)
    approve = _decision(decision)
    with write_transaction(engine_of(request)) as connection:
        submissions.decide_submission(connection, settings, user, entry_id, approve)
    return _back(request)


@router.post("/moderation/claims/{claim_id}/{decision}")
def decide_claim(
    request: Request, claim_id: int, decision: str, user: Moderator, csrf_token: CsrfField = ""
) -> Response:
    check_csrf(request, csrf_token)
    approve = _decision(decision)
    with write_transaction(engine_of(request)) as connection:
        claims.decide_claim(connection, user, claim_id, approve)
    return _back(request)


def _decision(decision: str) -> bool:
    if decision not in ("approve", "reject"):
        raise NotFound(f"there is no action {decision!r}: approve or reject")
    return decision == "approve"


@router.get("/admin/audit")
def audit_page(
    request: Request,
    user: Admin,
    connection: DbConnection,
    page: PageNumber = 1,
) -> Response:
    entries, total = audit.recent(connection, AUDIT_PAGE, (page - 1) * AUDIT_PAGE)
    pages = page_count(total, AUDIT_PAGE)
    if page > pages:
        raise NotFound(f"page {page} of the audit log does not exist: it has {pages}")
    context = {
        "title": "Audit log",
        "entries": entries,
        "total": total,
        "page": page,
        "pages": pages,
        "previous": f"/admin/audit?page={page - 1}" if page > 1 else None,
        "next": f"/admin/audit?page={page + 1}" if page < pages else None,
    }
    return render(request, "audit.html", context)
