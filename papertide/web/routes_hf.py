"""The Hugging Face-compatible papers API, so that ``huggingface_hub.HfApi(endpoint=...)`` and
the ``hf papers`` CLI (``HF_ENDPOINT=...``) work against this site (docs/api-hf.md).

Reads: ``GET /api/daily_papers``, ``GET /api/papers/{id}``, ``GET /papers/{id}.md`` (search,
``GET /api/papers/search``, lives with the search page in :mod:`routes_search`). Writes, with an
``Authorization: Bearer`` API token: ``POST /api/papers/index`` and ``POST /api/papers/submit``.
A paper the catalog lacks is fetched from the arXiv API through ``app.state.arxiv_transport``
(None in production; tests replay recorded answers). Errors are the site's JSON error shape.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import httpx
from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from papertide import submissions
from papertide.accounts.ratelimit import Limit, enforce
from papertide.cards import paper_page
from papertide.catalog.ids import parse_arxiv_id
from papertide.catalog.store import CatalogWriter
from papertide.daily import month_bounds, week_bounds
from papertide.db.engine import write_transaction
from papertide.db.schema import papers
from papertide.errors import InvalidInput, PermissionDenied
from papertide.hf_daily import DailyScope, DailySort, daily_page
from papertide.paper_markdown import paper_markdown
from papertide.web.auth import TokenUser
from papertide.web.deps import AppSettings, DbConnection, engine_of
from papertide.web.hf_json import daily_json, paper_json
from papertide.web.params import parse_day, parse_month, parse_week
from papertide.web.routes_api_common import (
    ARXIV_REF_PATTERN,
    EXAMPLE_ARXIV_ID,
    JSON_ARRAY,
    JSON_OBJECT,
    Responses,
    error_doc,
)
from papertide.web.routes_api_lists import YEAR
from papertide.web.routes_submit import SUBMIT_ATTEMPTS

router = APIRouter()

MAX_LIMIT = 100
DEFAULT_LIMIT = 50
# Each attempt may cost a request to arXiv (submissions share the /submit form's budget).
INDEX_ATTEMPTS = Limit(60, 3600, "papers indexed")


def _period(
    day: str | None, week: str | None, month: str | None
) -> tuple[date | None, date | None]:
    """First and last list day of ``date``, ``week`` or ``month`` (at most one of them)."""
    named = (("date", day), ("week", week), ("month", month))
    given = [(n, v.strip()) for n, v in named if v and v.strip()]
    if len(given) > 1:
        names = " and ".join(n for n, _ in given)
        raise InvalidInput(f"give one of date, week and month, not {names}")
    if not given:
        return None, None
    name, value = given[0]
    try:
        if name == "date":
            one = parse_day(value)
            return one, one
        if name == "week":
            return week_bounds(*parse_week(value))
        return month_bounds(*parse_month(value))
    except InvalidInput as exc:
        raise InvalidInput(f"{name}: {exc.message}") from None


# What the schema documents of the parameters; the route itself checks them and says what is
# wrong in its own words ("date: '2025-13-01' is not a date ..."), naming the parameter. A
# blank value counts as none given.
_BLANK = r"^\s*$"
_DATE_DOC: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "format": "date", "pattern": f"^{YEAR}-"},
        {"type": "string", "pattern": _BLANK},
        {"type": "null"},
    ],
    "examples": ["2025-02-03"],
}
_WEEK_DOC: dict[str, Any] = {
    "pattern": rf"^\s*(?:{YEAR}-[Ww](?:0?[1-9]|[1-4][0-9]|5[0-3]))?\s*$",
    "examples": ["2025-W06"],
}
_MONTH_DOC: dict[str, Any] = {
    "pattern": rf"^\s*(?:{YEAR}-(?:0[1-9]|1[0-2]))?\s*$",
    "examples": ["2025-02"],
}
_SORT_DOC: dict[str, Any] = {"enum": [sort.value for sort in DailySort]}
_ID_DOC: dict[str, Any] = {"pattern": ARXIV_REF_PATTERN, "examples": [EXAMPLE_ARXIV_ID]}
_BAD: Responses = {400: error_doc("Invalid parameters (the message names the one at fault).")}
_NO_PAPER: Responses = {404: error_doc("No such paper in the catalog (or it is hidden).")}
_WRITE_ERRORS: Responses = {
    400: error_doc("Invalid body, or the submission rules refuse it (the message says why)."),
    401: error_doc("No API token, or an unknown or revoked one."),
    403: error_doc("The account may not do this (suspended, or not in the organization)."),
    404: error_doc("arXiv has no such paper."),
    429: error_doc("Too many attempts; `Retry-After` says how many seconds to wait."),
    502: error_doc("arXiv could not be reached."),
}


@router.get("/api/daily_papers", responses={200: JSON_ARRAY, **_BAD})
def daily_papers(
    request: Request,
    connection: DbConnection,
    settings: AppSettings,
    p: Annotated[int, Query(ge=0, le=1_000_000, description="Page, from 0.")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    day: Annotated[
        str | None,
        Query(alias="date", description="YYYY-MM-DD", json_schema_extra=_DATE_DOC),
    ] = None,
    week: Annotated[str | None, Query(description="YYYY-Www", json_schema_extra=_WEEK_DOC)] = None,
    month: Annotated[str | None, Query(description="YYYY-MM", json_schema_extra=_MONTH_DOC)] = None,
    submitter: Annotated[str | None, Query(max_length=100)] = None,
    sort: Annotated[
        str, Query(description="publishedAt or trending", json_schema_extra=_SORT_DOC)
    ] = "publishedAt",
) -> JSONResponse:
    """The daily lists, HF-shaped: one day, ISO week or month (all days when none is given),
    newest first or in trending order; ``Link: <...>; rel="next"`` while more pages exist."""
    first, last = _period(day, week, month)
    scope = DailyScope(first, last, (submitter or "").strip() or None, DailySort.parse(sort))
    entries, more = daily_page(connection, scope, settings.timezone, p * limit, limit)
    response = JSONResponse(daily_json(connection, entries))
    if more:
        response.headers["Link"] = f'<{request.url.include_query_params(p=p + 1)}>; rel="next"'
    return response


@router.get("/papers/{arxiv_id:path}.md")
def paper_as_markdown(arxiv_id: str, connection: DbConnection, settings: AppSettings) -> Response:
    """The paper page as Markdown (``HfApi.read_paper``); 404 for unknown or hidden papers."""
    page = paper_page(connection, arxiv_id)
    text = paper_markdown(page, settings.base_url)
    return Response(text, media_type="text/markdown; charset=utf-8")


# --- writes ------------------------------------------------------------------------------------


class IndexBody(BaseModel):
    arxiv_id: str = Field(
        alias="arxivId",
        min_length=1,
        max_length=300,
        description="An arXiv id, or an arXiv or Hugging Face paper URL.",
        json_schema_extra=_ID_DOC,
    )


class SubmitBody(IndexBody):
    comment: str | None = Field(default=None, max_length=submissions.MAX_COMMENT)
    organization: str | None = Field(default=None, max_length=100)


def _transport(request: Request) -> httpx.BaseTransport | None:
    transport: httpx.BaseTransport | None = getattr(request.app.state, "arxiv_transport", None)
    return transport


def _paper_response(request: Request, arxiv_id: str, **extra: object) -> JSONResponse:
    settings = request.app.state.settings
    with engine_of(request).connect() as connection:
        paper = paper_json(connection, paper_page(connection, arxiv_id), settings.timezone)
    return JSONResponse({"paper": paper, **extra} if extra else paper)


@router.post("/api/papers/index", responses={200: JSON_OBJECT, **_WRITE_ERRORS})
def index_paper(
    request: Request, body: IndexBody, user: TokenUser, settings: AppSettings
) -> JSONResponse:
    """Add an arXiv paper to the catalog (fetched from arXiv unless known); the paper object."""
    if not user.active:
        raise PermissionDenied("a suspended account cannot index papers")
    engine = engine_of(request)
    enforce(engine, [(f"index:user:{user.id}", INDEX_ATTEMPTS)])
    arxiv_id = parse_arxiv_id(body.arxiv_id).id
    with engine.connect() as connection:
        known = connection.execute(select(papers.c.id).where(papers.c.arxiv_id == arxiv_id))
        missing = known.first() is None
    if missing:
        record = submissions.fetch_record(settings, arxiv_id, _transport(request))
        writer = CatalogWriter(tz=ZoneInfo(settings.timezone), now=datetime.now(UTC))
        with write_transaction(engine) as connection:
            writer.write(connection, [record])
    return _paper_response(request, arxiv_id)


@router.post(
    "/api/papers/submit",
    responses={
        200: JSON_OBJECT,
        **_WRITE_ERRORS,
        409: error_doc("The paper is on today's list already."),
    },
)
def submit_paper(
    request: Request, body: SubmitBody, user: TokenUser, settings: AppSettings
) -> JSONResponse:
    """Put a paper on today's list (the rules of :mod:`papertide.submissions` apply)."""
    engine = engine_of(request)
    enforce(engine, [(f"submit:user:{user.id}", SUBMIT_ATTEMPTS)])
    done = submissions.submit_paper(
        engine,
        settings,
        user,
        body.arxiv_id,
        body.comment,
        body.organization,
        transport=_transport(request),
    )
    extra = {"day": done.day.isoformat(), "status": done.status.value, "fetched": done.fetched}
    return _paper_response(request, done.arxiv_id, **extra)


_NOT_POST = ["GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"]


@router.api_route("/api/papers/index", methods=_NOT_POST, include_in_schema=False)
@router.api_route("/api/papers/submit", methods=_NOT_POST, include_in_schema=False)
def write_paths_take_post() -> Response:
    """405 naming POST, not the 404 the paper route below would give ("no paper 'index'")."""
    raise HTTPException(405, headers={"Allow": "POST"})


# Last: the id may contain a slash (old-style ids), so this path catches the rest of /api/papers/.
@router.get("/api/papers/{arxiv_id:path}", responses={200: JSON_OBJECT, **_NO_PAPER})
def paper_info(
    arxiv_id: Annotated[str, Path(json_schema_extra=_ID_DOC)],
    connection: DbConnection,
    settings: AppSettings,
) -> JSONResponse:
    """One paper, flat (``HfApi.paper_info``); 404 for unknown or hidden papers."""
    page = paper_page(connection, arxiv_id)
    return JSONResponse(paper_json(connection, page, settings.timezone))
