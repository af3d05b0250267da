"""Search: the ``/search`` page, the HF-shaped ``/api/papers/search`` and similar papers."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse

from papertide.cards import page_count
from papertide.catalog.ids import parse_arxiv_id
from papertide.errors import InvalidInput, NotFound
from papertide.search.filters import SearchFilters, Sort
from papertide.search.query import parse_query
from papertide.search.results import search_cards, similar_cards
from papertide.search.service import MAX_RESULTS, Mode, SearchRequest, SearchService
from papertide.web.deps import DbConnection
from papertide.web.hf_json import cards_json
from papertide.web.params import parse_day
from papertide.web.rendering import render
from papertide.web.routes_api_common import (
    ARXIV_REF_PATTERN,
    EXAMPLE_ARXIV_ID,
    JSON_ARRAY,
    Responses,
    error_doc,
)
from papertide.web.routes_lists import Pager, voted_on

router = APIRouter()
PAGE_SIZE = 20
HF_MAX_QUERY = 250


def search_service(request: Request) -> SearchService:
    service: SearchService = request.app.state.search
    return service


def _day_or_none(value: str, name: str) -> date | None:
    if not value.strip():
        return None
    try:
        return parse_day(value)
    except InvalidInput as exc:
        raise InvalidInput(f"{name}: {exc}") from None


def _categories(values: list[str]) -> tuple[str, ...]:
    """The category filter field: categories separated by spaces or commas."""
    found: list[str] = []
    for value in values:
        for part in value.replace(",", " ").split():
            found.extend(parse_query(f"cat:{part}").categories)
    return tuple(found)


@router.get("/search", response_class=HTMLResponse)
def search_page(
    request: Request,
    connection: DbConnection,
    q: Annotated[str, Query(max_length=1000)] = "",
    date_from: Annotated[str, Query(alias="from")] = "",
    date_to: Annotated[str, Query(alias="to")] = "",
    cat: Annotated[list[str] | None, Query()] = None,
    org: str = "",
    code: bool = False,
    listed: bool = False,
    sort: str = "relevance",
    mode: str = "hybrid",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> HTMLResponse:
    filters = SearchFilters(
        date_from=_day_or_none(date_from, "from"),
        date_to=_day_or_none(date_to, "to"),
        categories=_categories(cat or []),
        organization=org.strip() or None,
        has_code=code,
        on_list=listed,
    )
    order = Sort.parse(sort)
    search_mode = Mode.parse(mode)
    form = {
        "q": q,
        "from": date_from,
        "to": date_to,
        "cat": " ".join(cat or []),
        "org": org,
        "code": code,
        "listed": listed,
        "sort": order.value,
        "mode": search_mode.value,
    }
    context: dict[str, Any] = {"section": "search", "title": "Search", "form": form}
    if not q.strip() and not filters.active:
        return render(request, "search.html", {**context, "result": None})
    result = search_cards(
        search_service(request),
        connection,
        SearchRequest(q, filters, order, page, PAGE_SIZE, search_mode),
    )
    total = result.outcome.total
    pages = page_count(total, PAGE_SIZE)
    if page > pages:
        raise NotFound(f"page {page} of the results does not exist: there are {pages}")
    base = {k: v for k, v in form.items() if v not in ("", False, "relevance", "hybrid")}

    def page_url(n: int) -> str:
        return "/search?" + urlencode({**base, "page": n}, doseq=True)

    pager = Pager(
        page=page,
        pages=pages,
        previous=page_url(page - 1) if page > 1 else None,
        next=page_url(page + 1) if page < pages else None,
    )
    context.update(
        title=f"{q.strip() or 'Filtered papers'} · Search",
        result=result,
        cards=result.cards,
        voted=voted_on(request, connection, result.cards),
        start=(page - 1) * PAGE_SIZE,
        pager=pager,
        capped=order is Sort.RELEVANCE and total >= MAX_RESULTS,
    )
    return render(request, "search.html", context)


# --- JSON (shapes in papertide.web.hf_json) ---------------------------------------------------


_BAD: Responses = {400: error_doc("Invalid parameters (the message names the one at fault).")}


@router.get("/api/papers/search", responses={200: JSON_ARRAY, **_BAD})
def api_search(
    request: Request,
    connection: DbConnection,
    q: Annotated[
        str,
        Query(min_length=1, description="Words, a phrase in quotes, an arXiv id or a title."),
    ],
    limit: Annotated[int, Query(ge=1, le=120)] = 50,
) -> JSONResponse:
    """HF-compatible search: the hybrid ranking, as ``HfApi.list_papers(query=...)`` reads it."""
    if len(q) > HF_MAX_QUERY:
        raise InvalidInput(f"q is {len(q)} characters long; the limit is {HF_MAX_QUERY}")
    if not q.strip():
        raise InvalidInput("q is empty: give words, a phrase, an arXiv id or a title")
    result = search_cards(search_service(request), connection, SearchRequest(q, page_size=limit))
    return JSONResponse(cards_json(request, connection, result.cards))


@router.get(
    "/api/papers/{arxiv_id:path}/similar",
    responses={
        200: JSON_ARRAY,
        **_BAD,
        404: error_doc("No such paper in the catalog (or it is hidden)."),
    },
)
def api_similar(
    request: Request,
    connection: DbConnection,
    arxiv_id: Annotated[
        str,
        Path(
            description="An arXiv id, or an arXiv or Hugging Face paper URL.",
            json_schema_extra={"pattern": ARXIV_REF_PATTERN, "examples": [EXAMPLE_ARXIV_ID]},
        ),
    ],
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> JSONResponse:
    """The papers closest in meaning to one paper (cosine of their embeddings)."""
    canonical = parse_arxiv_id(arxiv_id).id
    cards, mode = similar_cards(search_service(request), connection, canonical, limit)
    response = JSONResponse(cards_json(request, connection, cards))
    response.headers["X-Papertide-Similarity"] = "embedding" if mode is Mode.VECTOR else "keyword"
    return response
