"""How big a request may be: its body, its URL and its headers.

:class:`RequestLimits` is pure ASGI middleware (no request object, no buffering):

- a body whose ``Content-Length`` is over ``max_request_body_bytes`` is answered 413 at once,
  before a byte of it is read, with ``Connection: close`` so the server drops the rest;
- a body without a length (``Transfer-Encoding: chunked``) is counted as the application reads
  it; the read that passes the limit raises :class:`BodyTooLarge` (an ``HTTPException``, so
  FastAPI's form and JSON parsing pass it on rather than calling the body malformed), nothing
  more is read, and whatever the application was about to answer (or raise) instead is
  replaced by the 413;
- a path plus query string over :data:`MAX_URL_BYTES` is answered 414, headers over
  :data:`MAX_HEADER_BYTES` in all 431, before the application sees them.

uvicorn's h11 parser limits the request head too, but loosely: it refuses a head still
incomplete after 16 KiB (400), yet one arriving in a single read (up to 64 KiB) passes whole.
The limits here make the ceiling exact whatever the server and however the bytes arrive.

Every refusal is the site's one error shape: the error page, or ``{"error": {"code": ...,
"message": ...}}`` for JSON clients (:func:`papertide.web.errors.wants_json`).
"""

from __future__ import annotations

from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from papertide.web.errors import wants_json
from papertide.web.rendering import render

# The longest real URLs (a search with every filter, an API list with its cursor) stay under
# 2 KiB; nginx's default buffer for a request line is 8 KiB.
MAX_URL_BYTES = 8192
MAX_HEADER_BYTES = 16384


class BodyTooLarge(HTTPException):
    """The body being read has passed the limit (raised from ``receive``)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, body_message(limit))


def body_message(limit: int) -> str:
    return f"the request body is larger than {limit:,} bytes, the most this site accepts"


def declared_length(scope: Scope) -> int | None:
    """The request's ``Content-Length``, or None when it has none (or an unreadable one: the
    HTTP server refuses those before they get here)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def refusal(scope: Scope, status: int, code: str, title: str, message: str) -> Response:
    """The refusal as JSON or as the error page; the connection is closed after it."""
    request = Request(scope)
    response: Response
    if wants_json(request):
        response = JSONResponse({"error": {"code": code, "message": message}}, status_code=status)
    else:
        context = {"status": status, "code": code, "title": title, "message": message}
        response = render(request, "error.html", context, status=status)
    response.headers["Connection"] = "close"  # the rest of the request is not wanted
    return response


def too_large(scope: Scope, limit: int) -> Response:
    return refusal(scope, 413, "too_large", "Request too large", body_message(limit))


def head_refusal(scope: Scope) -> Response | None:
    """414 for a URL, 431 for headers, over their limits; None when the head is fine."""
    url = len(scope.get("raw_path") or scope["path"].encode()) + len(scope["query_string"])
    if url > MAX_URL_BYTES:
        message = f"the address is {url:,} bytes long; the most this site accepts is "
        return refusal(
            scope, 414, "uri_too_long", "Address too long", message + f"{MAX_URL_BYTES:,}"
        )
    headers = sum(len(name) + len(value) + 4 for name, value in scope["headers"])
    if headers > MAX_HEADER_BYTES:
        message = f"the request's headers hold {headers:,} bytes; the most this site accepts is "
        return refusal(
            scope, 431, "headers_too_large", "Headers too large", message + f"{MAX_HEADER_BYTES:,}"
        )
    return None


class RequestLimits:
    """Refuse requests over the limits above (see the module's docstring)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused_head = head_refusal(scope)
        if refused_head is not None:
            await refused_head(scope, receive, send)
            return
        length = declared_length(scope)
        if length is not None and length > self.max_body_bytes:
            await too_large(scope, self.max_body_bytes)(scope, receive, send)
            return
        await self._counted(scope, receive, send)

    async def _counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.max_body_bytes
        received = 0
        passed = False  # the body passed the limit: the app's own answer is replaced
        started = False  # a response went out (ours, or the app's before the limit was hit)
        refused = False  # ours

        async def counted_receive() -> Message:
            nonlocal received, passed
            if passed:
                raise BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    passed = True
                    raise BodyTooLarge(limit)
            return message

        async def refuse() -> None:
            nonlocal started, refused
            started = refused = True
            await too_large(scope, limit)(scope, receive, send)

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if passed and (refused or not started):
                if not started and message["type"] == "http.response.start":
                    await refuse()
                return  # the app's answer to a body it could not read: dropped
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            # Whatever the app made of the refused read (BodyTooLarge itself, or an exception
            # group from a middleware that reads in a task of its own), the answer is the 413;
            # unless the app had begun its own answer before the limit was passed.
            if not passed or (started and not refused):
                raise
            if not started:
                await refuse()
