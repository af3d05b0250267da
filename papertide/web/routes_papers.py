"""The paper page: ``/papers/{arxiv_id}``, HF-style (old-style ids contain a slash)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from papertide import claims, daily
from papertide.community.paper_view import paper_community
from papertide.search.results import similar_cards
from papertide.web.auth import viewer_of
from papertide.web.deps import AppSettings, DbConnection
from papertide.web.rendering import paper_url, render

router = APIRouter()


@router.get("/papers/{arxiv_id:path}")
def paper(
    arxiv_id: str, request: Request, connection: DbConnection, settings: AppSettings
) -> Response:
    viewer = viewer_of(request).user
    moderator = viewer is not None and viewer.can_moderate
    page = daily.paper_page(connection, arxiv_id, include_hidden=moderator)  # hidden: 404
    if page.arxiv_id != arxiv_id:
        # 2505.01234v2, arXiv:2505.01234 and the like: one canonical address per paper.
        return RedirectResponse(paper_url(page.arxiv_id), status_code=301)
    community = paper_community(
        connection, viewer_of(request).user, page.arxiv_id, settings.comment_edit_minutes
    )
    similar, mode = similar_cards(
        request.app.state.search, connection, page.arxiv_id, 8, include_hidden=moderator
    )
    context = {
        "title": page.title,
        "paper": page,
        "community": community,
        "similar": similar,
        "similar_mode": mode.value,
    }
    context["claims"] = claims.paper_claims(connection, page.arxiv_id, viewer)  # _paper_claims
    return render(request, "paper.html", context)
