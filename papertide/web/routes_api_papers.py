"""JSON API: one paper, papers like it, and search (the search page's filters and rankings)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy import func, select

from papertide.cards import paper_page
from papertide.community.papers import canonical_id
from papertide.community.votes import has_voted
from papertide.db.schema import comments, papers
from papertide.search.filters import SearchFilters, Sort
from papertide.search.results import search_cards, similar_cards
from papertide.search.service import Mode, SearchRequest
from papertide.web import api_models as m
from papertide.web.deps import DbConnection
from papertide.web.rendering import paper_url
from papertide.web.routes_api_common import (
    LIST_ERRORS,
    NOT_FOUND,
    READ_ERRORS,
    ArxivId,
    Categories,
    CurrentCaller,
    CursorParam,
    PageLimit,
    answer,
    card_fields,
    card_models,
    cursors,
    organization_ref,
    scope_of,
    voted_set,
)
from papertide.web.routes_search import _categories, search_service

router = APIRouter(tags=["papers"])


@router.get("/search", response_model=m.SearchList, responses=LIST_ERRORS)
def search(
    request: Request,
    connection: DbConnection,
    caller: CurrentCaller,
    q: Annotated[
        str,
        Query(
            max_length=1000,
            description='Words, a "phrase", -excluded words, cat:cs.CL, author:name, an '
            "arXiv id or a title. Empty: every paper that passes the filters.",
        ),
    ] = "",
    category: Categories = None,
    organization: Annotated[str, Query(max_length=100, description="Organization slug.")] = "",
    has_code: Annotated[bool, Query(description="Only papers with a code link.")] = False,
    listed: Annotated[bool, Query(description="Only papers on a daily list.")] = False,
    date_from: Annotated[
        m.IsoDay | None, Query(alias="from", description="Published on or after.")
    ] = None,
    date_to: Annotated[
        m.IsoDay | None, Query(alias="to", description="Published on or before.")
    ] = None,
    sort: Annotated[
        Sort, Query(description="relevance, date (newest) or upvotes.")
    ] = Sort.RELEVANCE,
    mode: Annotated[
        Mode, Query(description="Relevance ranking: hybrid (words and meaning), keyword or vector.")
    ] = Mode.HYBRID,
    limit: PageLimit = 20,
    cursor: CursorParam = None,
) -> Response:
    """Search, as the search page does it. A cursor keeps the query, filters and limit."""
    filters = SearchFilters(
        date_from=date_from,
        date_to=date_to,
        categories=_categories(category or []),
        organization=organization.strip() or None,
        has_code=has_code,
        on_list=listed,
    )
    scope = scope_of(request, with_limit=True)
    offset = cursors(request).offset(scope, cursor)
    page = offset // limit + 1
    result = search_cards(
        search_service(request),
        connection,
        SearchRequest(q, filters, sort, page, limit, mode),
    )
    voted = voted_set(connection, caller, result.cards)
    items = [
        m.SearchCard(
            **card_fields(card, voted),
            title_html=str(card.title_html or ""),
            excerpt_html=str(card.excerpt_html or ""),
            pinned=card.reason,
        )
        for card in result.cards
    ]
    more = offset + limit < result.outcome.total  # relevance: at most MAX_RESULTS
    next_cursor = cursors(request).make(scope, [offset + limit]) if more else None
    body = m.SearchList(
        items=items,
        next_cursor=next_cursor,
        total=result.outcome.total,
        mode=result.outcome.mode.value,
        notice=result.outcome.notice,
    )
    return answer(request, body, next_cursor=next_cursor)


@router.get(
    "/papers/{arxiv_id:arxiv}/similar",
    response_model=m.SimilarList,
    responses={**READ_ERRORS, **NOT_FOUND},
)
def similar(
    request: Request,
    connection: DbConnection,
    caller: CurrentCaller,
    arxiv_id: ArxivId,
    limit: Annotated[int, Query(ge=1, le=50, description="How many, 1-50.")] = 10,
) -> Response:
    """The papers closest in meaning (embeddings; by shared words until vectors exist)."""
    cards, mode = similar_cards(search_service(request), connection, canonical_id(arxiv_id), limit)
    body = m.SimilarList(
        items=card_models(connection, caller, cards),
        similarity="embedding" if mode is Mode.VECTOR else "keyword",
    )
    return answer(request, body)


@router.get(
    "/papers/{arxiv_id:arxiv}", response_model=m.Paper, responses={**READ_ERRORS, **NOT_FOUND}
)
def paper(
    request: Request, connection: DbConnection, caller: CurrentCaller, arxiv_id: ArxivId
) -> Response:
    """Everything about one paper (a version suffix is ignored)."""
    page = paper_page(connection, arxiv_id)
    comment_count = connection.execute(
        select(func.count())
        .select_from(comments.join(papers, papers.c.id == comments.c.paper_id))
        .where(papers.c.arxiv_id == page.arxiv_id, comments.c.deleted_at.is_(None))
    ).scalar_one()
    body = m.Paper(
        arxiv_id=page.arxiv_id,
        title=page.title,
        abstract=page.abstract,
        authors=[m.AuthorOut(name=a.name, affiliation=a.affiliation) for a in page.authors],
        categories=list(page.categories),
        primary_category=page.primary_category,
        versions=[
            m.VersionOut(number=v.number, submitted_at=v.submitted_at, size=v.size)
            for v in page.versions
        ],
        days_listed=list(page.days_listed),
        published_at=page.published_at,
        updated_at=page.updated_at,
        latest_version=page.latest_version,
        comments=page.comments,
        journal_ref=page.journal_ref,
        doi=page.doi,
        report_no=page.report_no,
        license=page.license,
        msc_class=page.msc_class,
        acm_class=page.acm_class,
        submitter=page.submitter,
        ai_summary=page.ai_summary,
        ai_summary_model=page.ai_summary_model,
        code_url=page.code_url,
        project_url=page.project_url,
        organization=organization_ref(page.organization_slug, page.organization_name),
        upvotes=page.upvotes,
        withdrawn=page.withdrawn,
        comment_count=comment_count,
        url=paper_url(page.arxiv_id),
        voted=None if caller.user is None else has_voted(connection, caller.user, page.arxiv_id),
    )
    return answer(request, body)
