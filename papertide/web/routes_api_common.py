"""What every JSON API route shares: who is calling, rate limits, answers with ETags, the
parameters of paged lists, the error responses the schema declares, and cards as JSON.

Authentication: ``Authorization: Bearer pt_...`` (an API token from the account page). Reads
work without one; writes and ``/me`` need one. A token that is sent must be valid (401 if not).

Rate limits (see docs/api.md): with a token, ``api_token_rate_limit`` requests a minute per
token, counted in the database (one small write per request) so the limit holds across web
workers; without one, ``api_ip_rate_limit`` a minute per client address, counted in each
worker's memory and shared through the database once a second (:class:`SharedCounter`: no
request waits for a database write, and anonymous reads go on while an import holds SQLite's
write lock). Both answer 429 with ``Retry-After``.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Path, Query, Request, Security
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, StringConstraints
from sqlalchemy import ColumnElement, Connection
from starlette.convertors import Convertor, register_url_convertor

from papertide.accounts.ratelimit import Limit, SharedCounter, enforce
from papertide.accounts.tokens import user_for_token
from papertide.accounts.users import User
from papertide.cards import PaperCard
from papertide.community.votes import voted_paper_ids
from papertide.errors import InvalidInput, PermissionDenied
from papertide.web import api_models as m
from papertide.web.deps import engine_of
from papertide.web.pagination import MAX_CURSOR, Cursors, Keyset
from papertide.web.rendering import paper_url

PREFIX = "/api/v1"
_ARXIV_ID = (
    r"(?:[0-9]{4}\.[0-9]{4,5}|[a-z]+(?:-[a-z]+)*(?:\.[A-Z]{2})?/[0-9]{7})(?:v[1-9][0-9]{0,3})?"
)
ARXIV_ID_PATTERN = f"^{_ARXIV_ID}$"
EXAMPLE_ARXIV_ID = "2502.00001"


def _any_case(text: str) -> str:
    """A pattern matching ``text`` in any case (JSON Schema patterns take no flags)."""
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in text)


_HTTP = f"(?:{_any_case('http')}[sS]?://)?"
_REF_PREFIX = "|".join(
    (
        _any_case("arxiv:"),
        _any_case("oai:arxiv.org:"),
        f"{_HTTP}(?:{_any_case('www.')}|{_any_case('export.')})?{_any_case('arxiv.org/')}"
        f"(?:{_any_case('abs')}|{_any_case('pdf')}|{_any_case('html')})/",
        f"{_HTTP}(?:{_any_case('www.')})?{_any_case('huggingface.co/papers/')}",
    )
)
_MONTH = "(?:0[1-9]|1[0-2])"
_NUMBER4 = "(?:000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})"
_NUMBER5 = f"(?:0{_NUMBER4}|[1-9][0-9]{{4}})"
# Exactly the ids papertide.catalog.ids accepts: 0704.0001 to 1412.9999, then five digits from
# 1501.00001; old style with a month 01-12; no number 0000.
_VALID_ID = (
    f"(?:(?:07(?:0[4-9]|1[0-2])|0[89]{_MONTH}|1[0-4]{_MONTH})\\.{_NUMBER4}"
    f"|(?:1[5-9]|[2-9][0-9]){_MONTH}\\.{_NUMBER5}"
    f"|[a-z]+(?:-[a-z]+)*(?:\\.[A-Z]{{2}})?/[0-9]{{2}}{_MONTH}[0-9]{{3}})"
    "(?:v[1-9][0-9]{0,3})?"
)
# What papertide.catalog.ids reads: an id, or an id behind an arXiv: / OAI prefix or in an
# arXiv or Hugging Face paper URL (the Hugging Face-compatible routes take any of them).
ARXIV_REF_PATTERN = rf"^\s*(?:{_VALID_ID}|(?:{_REF_PREFIX}){_VALID_ID}(?:\.pdf)?/?)\s*$"
T = TypeVar("T")


class ArxivIdConvertor(Convertor[str]):
    """``{arxiv_id:arxiv}`` in a path: an arXiv id, which may hold a slash (hep-th/9901001), so
    ``/papers/{arxiv_id:arxiv}`` matches ``/papers/hep-th/9901001`` but not
    ``/papers/2502.00001/vote``, and a path that holds no id matches no route (404)."""

    regex = _ARXIV_ID

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("arxiv", ArxivIdConvertor())

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="ApiToken",
    description="An API token from your account page: `Authorization: Bearer pt_...`.",
)

PageLimit = Annotated[int, Query(ge=1, le=100, description="Items per page, 1-100.")]
CursorParam = Annotated[
    str | None,
    Query(
        max_length=MAX_CURSOR,
        description="`next_cursor` of the previous page; leave out for the first page.",
    ),
]
CATEGORY_PATTERN = r"^[A-Za-z]+(-[A-Za-z]+)*(\.[A-Za-z]+(-[A-Za-z]+)*)?$"
Categories = Annotated[
    list[Annotated[str, StringConstraints(pattern=CATEGORY_PATTERN)]] | None,
    Query(description="arXiv categories (any of them; repeat the parameter), e.g. cs.CL."),
]
# Ids are 32-bit integers in the database (PostgreSQL refuses larger ones outright).
MAX_ID = 2**31 - 1
ArxivId = Annotated[
    str,
    Path(
        pattern=ARXIV_ID_PATTERN,
        description="An arXiv id, with or without version: `2502.00001`, `hep-th/9901001v2`.",
        examples=[EXAMPLE_ARXIV_ID],
    ),
]


Responses = dict[int | str, dict[str, Any]]


def _error(description: str) -> dict[str, Any]:
    return {"model": m.ErrorBody, "description": description}


error_doc = _error  # for the routes outside /api/v1 that answer the same error shape


def json_doc(shape: dict[str, Any], description: str = "Successful Response") -> dict[str, Any]:
    """A 200 answer whose JSON has ``shape`` (a JSON Schema), for routes without a model."""
    return {"description": description, "content": {"application/json": {"schema": shape}}}


JSON_ARRAY = json_doc({"type": "array", "items": {"type": "object"}})
JSON_OBJECT = json_doc({"type": "object"})


_ETAG = {
    "ETag": {
        "description": "A hash of the body: send it as If-None-Match.",
        "schema": {"type": "string"},
    }
}
_LINK = {
    "Link": {
        "description": '`<url>; rel="next"` when there is a next page.',
        "schema": {"type": "string"},
    }
}
_NOT_MODIFIED = {
    "description": "Not modified: the answer still has the ETag sent in If-None-Match."
}
_COMMON: Responses = {
    400: _error("Invalid parameters, or a cursor that is altered or from another list."),
    401: _error("An Authorization header was sent with an unknown or revoked token."),
    429: _error("Too many requests; `Retry-After` says how many seconds to wait."),
}
# What GETs answer besides their body: every one carries an ETag (304 on a match).
READ_ERRORS: Responses = {200: {"headers": _ETAG}, 304: _NOT_MODIFIED, **_COMMON}
LIST_ERRORS: Responses = {**READ_ERRORS, 200: {"headers": {**_ETAG, **_LINK}}}
NOT_FOUND: Responses = {404: _error("No such thing (or it is hidden).")}
# Writes, and everything of the token's user.
TOKEN_ERRORS: Responses = {
    **_COMMON,
    401: _error("No API token, or an unknown or revoked one."),
    403: _error("The account may not do this (suspended)."),
}
TOKEN_READ_ERRORS: Responses = {**TOKEN_ERRORS, 200: {"headers": _ETAG}, 304: _NOT_MODIFIED}
TOKEN_LIST_ERRORS: Responses = {**TOKEN_READ_ERRORS, 200: {"headers": {**_ETAG, **_LINK}}}


# --- who is calling, and rate limits ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Caller:
    user: User | None


_limiter_lock = threading.Lock()


def address_limiter(request: Request) -> SharedCounter:
    """This app's counter of anonymous API requests per client address, shared by the workers."""
    state = request.app.state
    with _limiter_lock:
        limiter: SharedCounter | None = getattr(state, "api_address_limiter", None)
        if limiter is None:
            limiter = state.api_address_limiter = SharedCounter(state.engine)
    return limiter


def limit_address(request: Request) -> None:
    """Count an anonymous API request against ``api_ip_rate_limit``; 429 past it."""
    limit: int = request.app.state.settings.api_ip_rate_limit
    address = client_address(request)
    refusal = address_limiter(request).hit(
        "api:ip:" + address,
        Limit(
            limit, 60, f"API requests from this address (at most {limit} a minute without a token)"
        ),
    )
    if refusal is not None:
        raise refusal


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def refuse_nul(request: Request) -> None:
    """400 for a NUL character in the path or a parameter: no text may hold one (PostgreSQL
    refuses it in any text value)."""
    values = [request.scope["path"], *(v for _k, v in request.query_params.multi_items())]
    if any("\x00" in value for value in values):
        raise InvalidInput("the path or a parameter holds a NUL character (%00)")


def api_caller(request: Request) -> Caller:
    """Resolve the token (if any) and count the request against its rate limit."""
    refuse_nul(request)
    settings = request.app.state.settings
    header = request.headers.get("authorization")
    if header is None:
        limit_address(request)
        return Caller(None)
    scheme, _, raw = header.partition(" ")
    raw = raw.strip()
    user = None
    if scheme.lower() == "bearer" and raw:
        with engine_of(request).connect() as connection:
            user = user_for_token(connection, raw)
    if user is None:
        limit_address(request)
        raise PermissionDenied(
            "the API token is missing, unknown or revoked: send Authorization: Bearer pt_...",
            login_required=True,
        )
    count = settings.api_token_rate_limit
    key = "api:token:" + hashlib.sha256(raw.encode()).hexdigest()[:32]
    enforce(engine_of(request), [(key, Limit(count, 60, f"API requests ({count} a minute)"))])
    return Caller(user)


def token_user(
    caller: Annotated[Caller, Depends(api_caller)],
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
) -> User:
    """The token's user; 401 without a token."""
    if caller.user is None:
        raise PermissionDenied(
            "this needs an API token: send Authorization: Bearer pt_...", login_required=True
        )
    return caller.user


CurrentCaller = Annotated[Caller, Depends(api_caller)]
TokenUser = Annotated[User, Depends(token_user)]


# --- answers -----------------------------------------------------------------------------------


def cursors(request: Request) -> Cursors:
    return Cursors(request.app.state.secret)


def scope_of(request: Request, *, with_limit: bool = False, extra: str = "") -> str:
    """What a cursor is bound to: the path and every parameter but the cursor (and limit),
    plus ``extra`` (what the path leaves implicit, such as the day of the latest list)."""
    skip = {"cursor"} if with_limit else {"cursor", "limit"}
    params = sorted((k, v) for k, v in request.query_params.multi_items() if k not in skip)
    return f"{request.url.path}?{params!r}|{extra}"


def keyset_page(
    request: Request, order: Keyset, cursor: str | None, *, extra: str = ""
) -> tuple[str, ColumnElement[bool] | None]:
    """The list's scope and the condition selecting the rows after ``cursor``."""
    scope = scope_of(request, extra=extra)
    if cursor is None:
        return scope, None
    return scope, order.after(cursors(request).read(scope, cursor, order.kinds))


def where_after(statement: Any, condition: ColumnElement[bool] | None) -> Any:
    """``statement`` limited to the rows after the cursor (all of them without one)."""
    return statement if condition is None else statement.where(condition)


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in header.split(","))


def answer(
    request: Request,
    body: BaseModel,
    *,
    status: int = 200,
    next_cursor: str | None = None,
) -> Response:
    """``body`` as JSON; GETs carry an ETag (304 on a matching If-None-Match) and, for a list
    with more pages, ``Link: <...>; rel="next"``."""
    content = body.model_dump_json().encode()
    private = request.headers.get("authorization") is not None
    headers = {
        "Cache-Control": "private, no-cache" if private else "no-cache",
        "Vary": "Authorization, Accept-Encoding",
    }
    if request.method == "GET":
        etag = 'W/"' + hashlib.sha256(content).hexdigest()[:32] + '"'
        headers["ETag"] = etag
        if _etag_matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
    if next_cursor is not None:
        headers["Link"] = f'<{request.url.include_query_params(cursor=next_cursor)}>; rel="next"'
    return Response(content, status_code=status, media_type="application/json", headers=headers)


# --- cards -------------------------------------------------------------------------------------


def organization_ref(slug: str | None, name: str | None) -> m.OrganizationRef | None:
    return m.OrganizationRef(slug=slug, name=name or slug) if slug else None


def card_fields(card: PaperCard, voted: set[str] | None) -> dict[str, Any]:
    """A card's fields as :class:`~papertide.web.api_models.PaperCard` takes them."""
    return {
        "arxiv_id": card.arxiv_id,
        "title": card.title,
        "excerpt": card.excerpt,
        "authors": list(card.authors),
        "author_count": card.author_count,
        "published_at": card.published_at,
        "upvotes": card.upvotes,
        "organization": organization_ref(card.organization_slug, card.organization_name),
        "code_url": card.code_url,
        "project_url": card.project_url,
        "listed_on": card.listed_on,
        "position": card.position,
        "url": paper_url(card.arxiv_id),
        "voted": None if voted is None else card.arxiv_id in voted,
    }


def voted_set(connection: Connection, caller: Caller, cards: list[PaperCard]) -> set[str] | None:
    """The cards the caller upvoted; None without a token (``voted`` is null then)."""
    if caller.user is None:
        return None
    return voted_paper_ids(connection, caller.user, [c.arxiv_id for c in cards])


def card_models(
    connection: Connection, caller: Caller, cards: list[PaperCard]
) -> list[m.PaperCard]:
    voted = voted_set(connection, caller, cards)
    return [m.PaperCard(**card_fields(card, voted)) for card in cards]


def page_of(rows: list[T], limit: int) -> tuple[list[T], T | None]:
    """The first ``limit`` of ``rows`` (fetched ``limit + 1``), and the row to make the next
    cursor from (the last one shown) when there are more."""
    if len(rows) > limit:
        return rows[:limit], rows[limit - 1]
    return rows, None
