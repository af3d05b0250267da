"""Organization pages: the list, one organization's papers and members, and their management."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from papertide import organizations
from papertide.cards import page_count
from papertide.community.votes import voted_paper_ids
from papertide.db.engine import write_transaction
from papertide.errors import NotFound
from papertide.web.auth import Admin, LoggedInUser, check_csrf, viewer_of
from papertide.web.deps import AppSettings, DbConnection, engine_of
from papertide.web.rendering import render

router = APIRouter()

CsrfField = Annotated[str, Form(alias="csrf_token")]
TextField = Annotated[str, Form()]
PageNumber = Annotated[int, Query(ge=1, le=1_000_000, description="Page number, from 1.")]


def org_url(slug: str) -> str:
    return f"/orgs/{slug}"


@router.get("/orgs")
def organizations_page(request: Request, connection: DbConnection) -> Response:
    context = {
        "title": "Organizations",
        "kind": "index",
        "listed": organizations.list_organizations(connection),
    }
    return render(request, "org.html", context)


@router.post("/orgs")
def create_organization(
    request: Request,
    user: Admin,
    csrf_token: CsrfField = "",
    slug: TextField = "",
    name: TextField = "",
    description: TextField = "",
) -> Response:
    check_csrf(request, csrf_token)
    with write_transaction(engine_of(request)) as connection:
        made = organizations.create_organization(connection, user, slug, name, description)
    return RedirectResponse(org_url(made.slug), status_code=303)


@router.get("/orgs/{slug}")
def organization_page(
    request: Request,
    slug: str,
    connection: DbConnection,
    settings: AppSettings,
    page: PageNumber = 1,
) -> Response:
    org = organizations.organization_by_slug(connection, slug)
    result = organizations.organization_papers(connection, org, page, settings.page_size)
    pages = page_count(result.total, settings.page_size)
    if page > pages:
        raise NotFound(f"page {page} of {org.name}'s papers does not exist: it has {pages}")
    viewer = viewer_of(request).user
    context = {
        "title": org.name,
        "kind": "org",
        "org": org,
        "cards": result.cards,
        "total": result.total,
        "start": (page - 1) * settings.page_size,
        "page": page,
        "pages": pages,
        "members": organizations.members(connection, org),
        "can_manage": organizations.can_manage(connection, org, viewer),
        "voted": voted_paper_ids(connection, viewer, [c.arxiv_id for c in result.cards]),
    }
    return render(request, "org.html", context)


@router.post("/orgs/{slug}/members")
def set_member(
    request: Request,
    slug: str,
    user: LoggedInUser,
    csrf_token: CsrfField = "",
    username: TextField = "",
    role: TextField = "member",
) -> Response:
    check_csrf(request, csrf_token)
    with write_transaction(engine_of(request)) as connection:
        org = organizations.organization_by_slug(connection, slug)
        organizations.set_member(connection, user, org, username, role)
    return RedirectResponse(org_url(org.slug) + "#members", status_code=303)


@router.post("/orgs/{slug}/members/{username}/remove")
def remove_member(
    request: Request, slug: str, username: str, user: LoggedInUser, csrf_token: CsrfField = ""
) -> Response:
    check_csrf(request, csrf_token)
    with write_transaction(engine_of(request)) as connection:
        org = organizations.organization_by_slug(connection, slug)
        organizations.remove_member(connection, user, org, username)
    return RedirectResponse(org_url(org.slug) + "#members", status_code=303)


@router.post("/orgs/{slug}/edit")
def edit_organization(
    request: Request,
    slug: str,
    user: LoggedInUser,
    csrf_token: CsrfField = "",
    name: TextField = "",
    description: TextField = "",
) -> Response:
    check_csrf(request, csrf_token)
    with write_transaction(engine_of(request)) as connection:
        org = organizations.organization_by_slug(connection, slug)
        organizations.update_profile(connection, user, org, name, description)
    return RedirectResponse(org_url(org.slug), status_code=303)
