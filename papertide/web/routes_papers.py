"""The paper page: ``/papers/{arxiv_id}``, HF-style (old-style ids contain a slash)."""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from papertide import claims, daily
from papertide.accounts.users import User
from papertide.community.paper_view import paper_community
from papertide.db.engine import write_transaction
from papertide.db.schema import papers
from papertide.errors import DatabaseUnavailable
from papertide.personal import marks, saves
from papertide.search.results import similar_cards
from papertide.web.auth import viewer_of
from papertide.web.deps import AppSettings, DbConnection, engine_of
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
    if viewer is not None:
        _mark_seen(request, connection, viewer, page.arxiv_id)
    similar, mode = similar_cards(
        request.app.state.search, connection, page.arxiv_id, 8, include_hidden=moderator
    )
    context = {
        "title": page.title,
        "paper": page,
        "community": community,
        "similar": similar,
        "similar_mode": mode.value,
        "personal": _personal(connection, viewer, page.arxiv_id),
    }
    context["claims"] = claims.paper_claims(connection, page.arxiv_id, viewer)  # _paper_claims
    return render(request, "paper.html", context)


def _mark_seen(request: Request, connection: DbConnection, viewer: User, arxiv_id: str) -> None:
    """Opening a paper's page marks it seen: the feed and digests will not recommend it again.
    A read first, so a page seen before costs no write."""
    paper_id = connection.execute(select(papers.c.id).where(papers.c.arxiv_id == arxiv_id)).scalar()
    if paper_id is None or marks.has_mark(connection, viewer.id, paper_id, marks.Mark.SEEN):
        return
    # Best effort: a read-only, full or busy database still shows the paper.
    with suppress(DatabaseUnavailable), write_transaction(engine_of(request)) as writer:
        marks.mark(writer, viewer, [paper_id], marks.Mark.SEEN, "web")


@dataclass(frozen=True)
class _Personal:
    folders: list[saves.Folder]
    saved: bool


def _personal(connection: DbConnection, viewer: User | None, arxiv_id: str) -> _Personal | None:
    """The viewer's folders and whether the paper is in one (for the Save form)."""
    if viewer is None:
        return None
    folders = saves.user_folders(connection, viewer)
    return _Personal(folders, bool(saves.saved_arxiv_ids(connection, viewer, [arxiv_id])))
