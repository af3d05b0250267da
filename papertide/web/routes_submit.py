"""What people put forward for the community: papers for today's list, authorship claims.

``/submit`` takes an arXiv id or URL (rules in :mod:`papertide.submissions`); a paper the
catalog lacks is fetched from the arXiv API through ``app.state.arxiv_transport`` (None in
production: the real network; tests put an ``httpx.MockTransport`` there). ``POST /claims``
claims one author entry of a paper from its page.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import httpx
from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import Connection

from papertide import claims, organizations, submissions
from papertide.accounts.ratelimit import Limit, enforce
from papertide.accounts.users import User
from papertide.config import Settings
from papertide.db.engine import write_transaction
from papertide.errors import PapertideError, RateLimited
from papertide.web.auth import LoggedInUser, check_csrf
from papertide.web.deps import AppSettings, DbConnection, engine_of
from papertide.web.rendering import paper_url, render

router = APIRouter()

# Attempts, successful or not: each may cost a request to arXiv.
SUBMIT_ATTEMPTS = Limit(20, 3600, "submission attempts")
CLAIM_ATTEMPTS = Limit(20, 3600, "authorship claims")
CsrfField = Annotated[str, Form(alias="csrf_token")]
TextField = Annotated[str, Form()]


def _transport(request: Request) -> httpx.BaseTransport | None:
    transport: httpx.BaseTransport | None = getattr(request.app.state, "arxiv_transport", None)
    return transport


def _form_context(connection: Connection, settings: Settings, user: User) -> dict[str, Any]:
    mine = submissions.submissions_of(connection, settings, user)
    return {
        "title": "Submit a paper",
        "section": "submit",
        "mine": mine,
        "left": max(0, settings.submission_daily_limit - len(mine)),
        "organizations": organizations.user_organizations(connection, user),
        "rules": settings,
        "done": None,
        "error": None,
        "form": {"paper": "", "comment": "", "organization": ""},
    }


@router.get("/submit")
def submit_page(
    request: Request,
    user: LoggedInUser,
    connection: DbConnection,
    settings: AppSettings,
    done: str = "",
) -> Response:
    context = _form_context(connection, settings, user)
    context["done"] = next((line for line in context["mine"] if line.arxiv_id == done), None)
    return render(request, "submit.html", context)


@router.post("/submit")
def submit(
    request: Request,
    user: LoggedInUser,
    settings: AppSettings,
    csrf_token: CsrfField = "",
    paper: TextField = "",
    comment: TextField = "",
    organization: TextField = "",
) -> Response:
    check_csrf(request, csrf_token)
    engine = engine_of(request)
    enforce(engine, [(f"submit:user:{user.id}", SUBMIT_ATTEMPTS)])
    try:
        result = submissions.submit_paper(
            engine,
            settings,
            user,
            paper,
            comment,
            organization or None,
            transport=_transport(request),
        )
    except PapertideError as exc:
        with engine.connect() as connection:
            context = _form_context(connection, settings, user)
        context["error"] = exc.message
        context["form"] = {"paper": paper, "comment": comment, "organization": organization}
        response = render(request, "submit.html", context, exc.status)
        if isinstance(exc, RateLimited):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    return RedirectResponse(f"/submit?done={quote(result.arxiv_id, safe='')}", status_code=303)


@router.post("/claims")
def claim(
    request: Request,
    user: LoggedInUser,
    csrf_token: CsrfField = "",
    arxiv_id: TextField = "",
    position: Annotated[int, Form(ge=0, le=100_000)] = 0,
) -> Response:
    check_csrf(request, csrf_token)
    enforce(engine_of(request), [(f"claim:user:{user.id}", CLAIM_ATTEMPTS)])
    with write_transaction(engine_of(request)) as connection:
        made = claims.claim_author(connection, user, arxiv_id, position)
    return RedirectResponse(paper_url(made.arxiv_id) + "#claims", status_code=303)
