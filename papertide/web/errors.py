"""The one place where errors become responses.

Every error, whether a :class:`papertide.errors.PapertideError` raised by the domain layer, an
unknown route, a malformed query parameter or an unexpected exception, is answered with the
same HTML error page, or with ``{"error": {"code": ..., "message": ...}}`` when the client asks
for JSON (an ``Accept`` header preferring ``application/json``).
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode, urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import DataError, DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException

from papertide.db.failures import unavailable
from papertide.errors import DatabaseUnavailable, PapertideError, PermissionDenied, RateLimited
from papertide.observability.middleware import route_template
from papertide.web.rendering import render

log = logging.getLogger("papertide.web")

TITLES = {
    400: "Bad request",
    401: "Log in first",
    403: "Not allowed",
    429: "Too many attempts",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    503: "Not ready",
}
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


def wants_json(request: Request) -> bool:
    """True when the client prefers JSON to HTML (or the path is under /api/)."""
    if request.url.path.startswith("/api/"):
        return True
    accept = request.headers.get("accept", "").lower()
    return "application/json" in accept and "text/html" not in accept


def _route(request: Request) -> str:
    """The route's template for the log, never the raw path: some paths carry secret tokens
    (``/subscriptions/{token}``, ``/feeds/for-you/{token}.atom``, ``/reset-password/{token}``)."""
    return route_template(request.scope)


def error_response(request: Request, status: int, code: str, message: str) -> Response:
    """The error page, or the JSON error shape, for ``status``."""
    if wants_json(request):
        return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)
    context = {
        "status": status,
        "code": code,
        "title": TITLES.get(status, "Server error"),
        "message": message,
    }
    return render(request, "error.html", context, status=status)


def _papertide_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PapertideError)
    if exc.status >= 500:
        log.error("%s %s failed: %s", request.method, _route(request), exc.message)
    if isinstance(exc, PermissionDenied) and exc.login_required and not wants_json(request):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET":  # after logging in, back to the page the form was on
            target = urlsplit(request.headers.get("referer", "")).path or "/"
        return RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303)
    response = error_response(request, exc.status, exc.code, exc.message)
    if isinstance(exc, RateLimited | DatabaseUnavailable):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def _database_error(request: Request, exc: Exception) -> Response:
    """A full disk, a read-only database, a lock or a pool wait that lasted too long: a 503
    saying so (papertide/db/failures.py), never the driver's words; anything else is a bug."""
    found = unavailable(exc)
    if found is None:
        return _unexpected_error(request, exc)
    log.warning("the database refused (%s): %s", found.code, exc)
    return _papertide_error(request, found)


def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"there is no page at {request.url.path}"
    else:
        message = str(exc.detail)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    response = error_response(request, exc.status_code, code, message)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "query")
        problems.append(f"{where}: {error.get('msg', 'invalid')}")
    return error_response(request, 400, "invalid_input", "; ".join(problems) or "invalid request")


def _data_error(request: Request, exc: Exception) -> Response:
    """A value the database itself refuses (PostgreSQL: a NUL character in text, an integer
    past its column's range) came from the request: a 400, not a 500."""
    log.info("%s %s: the database refused a value: %s", request.method, _route(request), exc)
    message = "a value in this request is out of range or holds a character not allowed"
    return error_response(request, 400, "invalid_input", message)


def _unexpected_error(request: Request, exc: Exception) -> Response:
    # Raised outside the routes (in a middleware), these arrive here rather than above.
    if isinstance(exc, PapertideError):
        return _papertide_error(request, exc)
    if isinstance(exc, DBAPIError | PoolTimeout) and unavailable(exc) is not None:
        return _database_error(request, exc)
    log.exception("%s %s failed", request.method, _route(request), exc_info=exc)
    message = "something went wrong on our side; the error has been logged"
    return error_response(request, 500, "internal_error", message)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(PapertideError, _papertide_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DataError, _data_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(PoolTimeout, _database_error)
    app.add_exception_handler(Exception, _unexpected_error)
