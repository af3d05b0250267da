"""Papertide's own JSON API under ``/api/v1/``, its OpenAPI schema and the docs pages.

``router`` gathers the API's routes (:mod:`routes_api_lists`, :mod:`routes_api_papers`,
:mod:`routes_api_community`, :mod:`routes_api_me`); every request to them passes
:func:`~papertide.web.routes_api_common.api_caller` first (token, rate limits).

``docs_router`` serves ``/openapi.json`` (the ``/api/`` paths only: the HTML pages and their
forms are not an API), ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc). Both pages work without
any CDN and under the site's ``script-src 'self'``: the viewers' files come from the
``fastapi-offline`` package, and the code starting them is ``static/api-docs.js``, not an inline
script. ReDoc writes its styles into ``<style>`` elements at run time and runs its search in a
worker made from a ``blob:`` URL, so its page alone allows those two (scripts stay ``'self'``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from markupsafe import escape
from starlette.routing import compile_path

from papertide import __version__
from papertide.errors import NotFound
from papertide.web import (
    api_models,
    routes_api_community,
    routes_api_lists,
    routes_api_me,
    routes_api_papers,
)
from papertide.web.routes_api_common import PREFIX, api_caller

SUBROUTERS = (
    routes_api_lists.router,
    routes_api_community.router,
    routes_api_me.router,
    routes_api_papers.router,
)
# Every path's methods: Starlette's own 405 names only the methods of the first route that
# matched the path, so PUT and DELETE of one path would each say the other is not allowed.
METHODS = [
    (compile_path(PREFIX + route.path)[0], route.methods or set())
    for sub in SUBROUTERS
    for route in sub.routes
    if isinstance(route, APIRoute)
]
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

fallback_router = APIRouter(include_in_schema=False)


@fallback_router.api_route("/{rest:path}", methods=ALL_METHODS)
def unmatched(request: Request, rest: str) -> Response:
    """404, or 405 with an ``Allow`` header naming every method the path has."""
    path = request.scope["path"]
    allowed = sorted({m for regex, methods in METHODS if regex.match(path) for m in methods})
    if not allowed:
        raise HTTPException(404)
    raise HTTPException(405, headers={"Allow": ", ".join(allowed)})


router = APIRouter(prefix=PREFIX, dependencies=[Depends(api_caller)])
for _sub in (*SUBROUTERS, fallback_router):
    router.include_router(_sub)

docs_router = APIRouter(include_in_schema=False)

ASSETS = Path(fastapi_offline.__file__).parent / "static"
ASSET_TYPES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "text/javascript",
}
DESCRIPTION = """\
Papertide's JSON API: papers, daily, weekly and monthly lists, trending, search, similar
papers, comments, votes, organizations, and the token's own feed, saves and digest
subscription.

* **Authentication**: `Authorization: Bearer pt_...`, a token made on your account page. Reads
  need none; writes and `/api/v1/me` do.
* **Pagination**: lists answer `{"items": [...], "next_cursor": ...}` and a `Link: <...>;
  rel="next"` header; pass `cursor=<next_cursor>` (same other parameters) for the next page.
* **ETags**: GET answers carry an `ETag`; send it back in `If-None-Match` to get 304.
* **Rate limits**: per token and, without one, per address; 429 with `Retry-After`.
* **Errors**: always `{"error": {"code": ..., "message": ...}}`.
"""
TAGS = [
    {"name": "lists", "description": "The catalog, daily, weekly and monthly lists, trending."},
    {"name": "papers", "description": "One paper, similar papers, search."},
    {"name": "community", "description": "Comments, votes, organizations."},
    {"name": "me", "description": "The token's user: account, feed, saves, digest."},
    {
        "name": "compatible",
        "description": "Outside /api/v1/: Hugging Face-compatible endpoints and older ones, "
        "kept as they are.",
    },
]


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = set()
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.add(value.rsplit("/", 1)[-1])
            else:
                found |= _refs(value)
        return found
    if isinstance(node, list):
        return set().union(*(_refs(item) for item in node)) if node else set()
    return set()


def _error_response(description: str) -> dict[str, Any]:
    schema = {"$ref": "#/components/schemas/ErrorBody"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def api_schema(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI schema of the ``/api/`` paths (built once per app).

    Invalid parameters are answered 400 with the error shape (see :mod:`papertide.web.errors`),
    so FastAPI's 422 is replaced by that wherever it declared one."""
    cached: dict[str, Any] | None = getattr(app.state, "api_schema", None)
    if cached is not None:
        return cached
    full = get_openapi(
        title=f"{app.state.settings.site_name} API",
        version=__version__,
        description=DESCRIPTION,
        routes=app.routes,
    )
    paths = {path: ops for path, ops in full["paths"].items() if path.startswith("/api/")}
    for operations in paths.values():
        for operation in operations.values():
            operation.setdefault("tags", ["compatible"])
            responses = operation.get("responses", {})
            if responses.pop("422", None) is not None and "400" not in responses:
                responses["400"] = _error_response("Invalid parameters.")
    components = full.get("components", {})
    schemas = dict(components.get("schemas", {}))
    if "ErrorBody" not in schemas:
        generated = api_models.ErrorBody.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        schemas.update(generated.pop("$defs", {}))
        schemas["ErrorBody"] = generated
    kept: set[str] = set()
    frontier = _refs(paths) | {"ErrorBody"}
    while frontier:
        name = frontier.pop()
        if name in kept or name not in schemas:
            continue
        kept.add(name)
        frontier |= _refs(schemas[name])
    schema: dict[str, Any] = {key: value for key, value in full.items() if key != "components"}
    schema["paths"] = paths
    schema["tags"] = TAGS
    schema["components"] = {
        **{k: v for k, v in components.items() if k != "schemas"},
        "schemas": {name: schemas[name] for name in sorted(kept)},
    }
    app.state.api_schema = schema
    return schema


@docs_router.get("/openapi.json")
def openapi(request: Request) -> JSONResponse:
    return JSONResponse(api_schema(request.app))


def _page(title: str, head: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<title>{escape(title)}</title>\n<link rel="icon" href="/static/favicon.svg">\n'
        f"{head}</head>\n<body>\n{body}"
        '<script src="/static/api-docs.js"></script>\n</body>\n</html>\n'
    )


@docs_router.get("/docs")
def swagger_page(request: Request) -> HTMLResponse:
    title = f"{request.app.state.settings.site_name} API"
    return HTMLResponse(
        _page(
            title,
            '<link rel="stylesheet" href="/docs/assets/swagger-ui.css">\n',
            '<div id="swagger-ui" data-spec="/openapi.json"></div>\n'
            '<script src="/docs/assets/swagger-ui-bundle.js"></script>\n',
        )
    )


@docs_router.get("/redoc")
def redoc_page(request: Request) -> HTMLResponse:
    title = f"{request.app.state.settings.site_name} API"
    page = _page(
        title,
        "",
        '<div id="redoc" data-spec="/openapi.json"></div>\n'
        '<script src="/docs/assets/redoc.standalone.js"></script>\n',
    )
    return HTMLResponse(page, headers={"Content-Security-Policy": _redoc_policy()})


def _redoc_policy() -> str:
    """The site's policy, but with inline ``<style>`` elements (ReDoc's styled components)."""
    from papertide.web.app import CONTENT_SECURITY_POLICY  # app imports this module

    relaxed = CONTENT_SECURITY_POLICY.replace(
        "style-src-elem 'self'", "style-src-elem 'self' 'unsafe-inline'"
    )
    return relaxed + "; worker-src 'self' blob:"  # its search index runs in a worker


@docs_router.get("/docs/assets/{name}")
def asset(name: str) -> Response:
    media_type = ASSET_TYPES.get(name)
    if media_type is None:
        raise NotFound(f"there is no docs asset {name!r}")
    return FileResponse(
        ASSETS / name,
        media_type=media_type,
        headers={"Cache-Control": "public, max-age=86400"},
    )
