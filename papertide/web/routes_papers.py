"""The paper page: ``/papers/{arxiv_id}``, HF-style (old-style ids contain a slash)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from papertide import daily
from papertide.web.deps import DbConnection
from papertide.web.rendering import paper_url, render

router = APIRouter()


@router.get("/papers/{arxiv_id:path}")
def paper(arxiv_id: str, request: Request, connection: DbConnection) -> Response:
    page = daily.paper_page(connection, arxiv_id)
    if page.arxiv_id != arxiv_id:
        # 2505.01234v2, arXiv:2505.01234 and the like: one canonical address per paper.
        return RedirectResponse(paper_url(page.arxiv_id), status_code=301)
    return render(request, "paper.html", {"title": page.title, "paper": page})
