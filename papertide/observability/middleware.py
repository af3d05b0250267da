"""The pure-ASGI middleware that watches every request, and answers the operator's endpoints.

For each HTTP request :class:`RequestObservability`

* takes a sane incoming ``X-Request-ID`` (:data:`REQUEST_ID`: letters, digits and ``._:+=/-``,
  at most 128 characters) or makes one, returns it in the ``X-Request-ID`` response header, and
  puts it into every log record made while the request is handled (see :mod:`.logs`);
* counts the request and times it in :mod:`.metrics`, labelled by the route *template*
  (``/papers/{arxiv_id}``), never the raw path, so label sets stay few and tokens carried in
  paths (``/subscriptions/{token}``, ``/feeds/for-you/{token}.atom``) appear nowhere;
* writes one access log line (logger ``papertide.access``): method, route, status, duration_ms,
  bytes, client;
* answers an unexpected exception with the app's own 500 handler (the one error page, logged
  once with its traceback and the request id) and the request id header, instead of letting
  it escape to the server.

It answers ``/healthz``, ``/readyz`` and ``/metrics`` itself, before the session, CSRF-cookie and
rate-limit layers and the router: none of them reads a cookie, sets one or is rate limited, all
say ``Cache-Control: no-store``, and they are not in the OpenAPI schema (which describes
``/api/`` only).
"""

from __future__ import annotations

import inspect
import ipaddress
import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from papertide.observability import metrics
from papertide.observability.health import ReadinessProbe
from papertide.observability.logs import ACCESS_LOGGER, request_id_var

log = logging.getLogger("papertide.web")
access_log = logging.getLogger(ACCESS_LOGGER)

REQUEST_ID = re.compile(r"[A-Za-z0-9._:+=/-]{1,128}")
UNMATCHED = "<unmatched>"
HEALTHZ, READYZ, METRICS = "/healthz", "/readyz", "/metrics"
PROBES = frozenset({HEALTHZ, READYZ, METRICS})
METRICS_CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
Networks = list[ipaddress.IPv4Network | ipaddress.IPv6Network]


def route_template(scope: Scope, root_path: str = "") -> str:
    """The template of the route that handled ``scope`` (``/papers/{arxiv_id}``), for logs and
    metric labels; :data:`UNMATCHED` when no route matched. ``root_path`` is the scope's root
    path before routing (a mount, such as ``/static``, extends it)."""
    fixed = scope.get("papertide.route")
    if fixed is not None:
        return str(fixed)
    # FastAPI (0.16x) keeps an included router's routes as declared, without the router's
    # prefix, and notes the chosen route's full template in its corner of the scope.
    fastapi_scope = scope.get("fastapi")
    chosen = (
        fastapi_scope.get("effective_route_context") if isinstance(fastapi_scope, dict) else None
    )
    template = getattr(chosen, "path_format", None)
    if template is None:
        route = scope.get("route")
        template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if template is not None:
        return str(template)
    mount = str(scope.get("root_path", ""))[len(root_path) :]
    return f"{mount}/{{path}}" if mount else UNMATCHED


def networks(entries: list[str]) -> Networks:
    """The ``metrics_allow`` setting's networks; ``*`` is every address."""
    if "*" in entries:
        return [ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")]
    return [ipaddress.ip_network(entry, strict=False) for entry in entries]


def client_allowed(scope: Scope, allowed: Networks) -> bool:
    client = scope.get("client")
    if not client:
        return False
    try:
        address = ipaddress.ip_address(client[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in allowed)


class RequestObservability:
    """See the module's docstring. The app's ``state`` gives the settings, engine and scheduler."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.readiness = ReadinessProbe()
        self._exposition: metrics.Exposition | None = None
        self._allowed: Networks | None = None
        self._publisher: metrics.LeaderPublisher | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, self._lifespan_send(scope, send))
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        root_path = str(scope.get("root_path", ""))
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        state: dict[str, Any] = {"status": 500, "bytes": 0, "started": False, "done": False}

        def finish() -> None:
            if not state["done"]:
                state["done"] = True
                self._finish(scope, root_path, state, time.perf_counter() - started)

        async def send_observed(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                state["started"] = True
                MutableHeaders(scope=message).append("X-Request-ID", request_id)
            elif message["type"] == "http.response.body":
                state["bytes"] += len(message.get("body", b""))
                if not message.get("more_body", False):
                    finish()  # counted before the client can see the end of the response
            await send(message)

        try:
            if scope["path"] in PROBES:
                scope["papertide.route"] = scope["path"]
                await self._probe(scope, send_observed)
            else:
                await self.app(scope, receive, send_observed)
        except Exception as exc:
            if state["started"]:
                log.exception("%s %s failed mid-response", scope["method"], route_template(scope))
                raise
            await self._server_error(scope, receive, send_observed, exc)
        finally:
            finish()
            request_id_var.reset(token)

    def _finish(self, scope: Scope, root: str, state: dict[str, Any], seconds: float) -> None:
        route = route_template(scope, root)
        status = int(state["status"])
        metrics.observe_request(scope["method"], route, status, seconds)
        quiet = route in PROBES and status < 400
        level = logging.WARNING if status >= 500 else logging.DEBUG if quiet else logging.INFO
        if not access_log.isEnabledFor(level):
            return
        duration_ms = round(seconds * 1000, 2)
        client = scope.get("client")
        address = client[0] if client else "-"
        access_log.log(
            level,
            "%s %s %d %.1f ms %d B %s",
            scope["method"],
            route,
            status,
            duration_ms,
            state["bytes"],
            address,
            extra={
                "method": scope["method"],
                "route": route,
                "status": status,
                "duration_ms": duration_ms,
                "bytes": state["bytes"],
                "client": address,
            },
        )

    async def _server_error(
        self, scope: Scope, receive: Receive, send: Send, exc: Exception
    ) -> None:
        """Answer with the app's handler for ``Exception`` (it logs the traceback)."""
        app = scope.get("app")
        handler = app.exception_handlers.get(Exception) if isinstance(app, FastAPI) else None
        if handler is None:
            log.error("%s %s failed", scope["method"], route_template(scope), exc_info=exc)
            await _json(send, 500, _error("internal_error", "something went wrong on our side"))
            return
        request = Request(scope, receive)
        try:
            if inspect.iscoroutinefunction(handler):
                response = await handler(request, exc)
            else:
                response = await run_in_threadpool(handler, request, exc)
        except Exception:
            log.exception("the error handler failed for %s", route_template(scope))
            await _json(send, 500, _error("internal_error", "something went wrong on our side"))
            return
        await response(scope, receive, send)

    # --- the operator's endpoints ---------------------------------------------------------------

    async def _probe(self, scope: Scope, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            message = f"{scope['path']} answers GET and HEAD only"
            await _json(send, 405, _error("method_not_allowed", message), allow=b"GET, HEAD")
            return
        app: Any = scope["app"]
        path = scope["path"]
        if path == HEALTHZ:
            await _json(send, 200, {"status": "ok"})
        elif path == READYZ:
            result = await self.readiness.check(app.state.engine)
            await _json(send, 200 if result.ready else 503, result.body())
        else:
            if self._allowed is None:
                self._allowed = networks(app.state.settings.metrics_allow)
            if not client_allowed(scope, self._allowed):
                message = (
                    "metrics are readable only from the addresses in the setting metrics_allow"
                )
                await _json(send, 403, _error("forbidden", message))
                return
            body = await run_in_threadpool(self._exposition_for(app).render)
            await _respond(send, 200, METRICS_CONTENT_TYPE, body)

    def _exposition_for(self, app: Any) -> metrics.Exposition:
        if self._exposition is None:
            self._exposition = metrics.Exposition(
                lambda: app.state.engine, lambda: bool(app.state.scheduler.lock.held)
            )
        return self._exposition

    def _lifespan_send(self, scope: Scope, send: Send) -> Send:
        """Starts and stops the leader gauge's publisher with the app (multiprocess mode)."""
        app: Any = scope.get("app")

        async def lifespan_send(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete" and app is not None:
                self._publisher = metrics.LeaderPublisher(_leads(app))
                self._publisher.start()
            elif message["type"] == "lifespan.shutdown.complete" and self._publisher:
                self._publisher.stop()
            await send(message)

        return lifespan_send


def _leads(app: Any) -> Callable[[], bool]:
    return lambda: bool(app.state.scheduler.lock.held)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


async def _json(send: Send, status: int, body: dict[str, Any], allow: bytes | None = None) -> None:
    extra = [(b"allow", allow)] if allow else []
    await _respond(send, status, b"application/json", orjson.dumps(body), extra)


async def _respond(
    send: Send,
    status: int,
    content_type: bytes,
    body: bytes,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
