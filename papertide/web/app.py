"""The web application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import Engine
from starlette.datastructures import MutableHeaders
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from papertide.accounts.sessions import CookieSigner, site_secret
from papertide.config import Settings
from papertide.db.engine import is_sqlite, make_engine, pool_options, write_transaction
from papertide.db.migrate import require_current_schema
from papertide.digest.service import digest_job
from papertide.jobs import Scheduler, statistics_job, trending_job
from papertide.mail import make_mailer
from papertide.observability.middleware import RequestObservability
from papertide.personal.feed import CandidateCache
from papertide.search.embedder import Embedder
from papertide.search.service import SearchService, service_for
from papertide.web import (
    routes_accounts,
    routes_api,
    routes_community,
    routes_digest,
    routes_feeds,
    routes_hf,
    routes_lists,
    routes_moderation,
    routes_orgs,
    routes_papers,
    routes_personal,
    routes_search,
    routes_submit,
)
from papertide.web.auth import ViewerMiddleware
from papertide.web.errors import install_error_handlers
from papertide.web.gate import RequestGate, request_slots
from papertide.web.rendering import STATIC_DIR, make_environment
from papertide.web.request_limits import RequestLimits

# No inline scripts anywhere: all JavaScript is in static files. KaTeX sets a few inline
# ``style`` attributes on the SVG and MathML it builds (stretchy arrows, widths), hence
# ``style-src-attr 'unsafe-inline'``; style sheets themselves come from 'self' only.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "style-src-elem 'self'",
        "style-src-attr 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
# Sent only over TLS (an https base_url, or a request that came over HTTPS, as a trusted proxy
# says): on plain HTTP it would be ignored, and on a test box it would pin the name to HTTPS.
HSTS = "max-age=31536000"


class SecurityHeaders:
    """ASGI middleware adding :data:`SECURITY_HEADERS` to every HTTP response, and
    ``Strict-Transport-Security`` when the site is served over TLS."""

    def __init__(self, app: ASGIApp, *, tls_site: bool = False) -> None:
        self.app = app
        self.tls_site = tls_site  # base_url is https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                if self.tls_site or scope.get("scheme") == "https":
                    headers.setdefault("Strict-Transport-Security", HSTS)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _scheduler(engine: Engine, settings: Settings, search: SearchService) -> Scheduler:
    def embedder() -> Embedder:
        model = search.embedder(wait=True)
        assert model is not None
        return model

    jobs = {
        "trending": trending_job(engine, settings),
        "digest": digest_job(engine, settings, lambda: make_mailer(settings), embedder),
    }
    if is_sqlite(engine):  # PostgreSQL's autovacuum keeps its statistics
        jobs["statistics"] = statistics_job(engine)
    return Scheduler(engine, settings, jobs)


def create_app(settings: Settings, *, check_schema: bool = True) -> FastAPI:
    """The Papertide web app for ``settings``.

    Raises :class:`papertide.errors.NotReady` when the database has a pending migration (unless
    ``check_schema`` is false), so a server never runs against an outdated schema.
    """
    engine = make_engine(settings.database_url, **pool_options(settings))
    if check_schema:
        try:
            require_current_schema(engine)
        except Exception:
            engine.dispose()
            raise

    search = service_for(engine, settings, serving=True)
    scheduler = _scheduler(engine, settings, search)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Served for real (not a bare TestClient): keep the search indexes in step and embed
        # new papers in the background; semantic search switches on as vectors arrive. The
        # scheduler (digests, trending) runs in whichever worker takes its lock.
        search.embedder()  # starts loading the model
        search.start_background()
        if settings.scheduler:
            scheduler.start()
        yield
        scheduler.stop()
        search.stop()
        engine.dispose()

    app = FastAPI(
        title=settings.site_name,
        # /openapi.json (the /api/ paths only), /docs and /redoc: see routes_api.docs_router.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    with write_transaction(engine) as connection:
        secret = site_secret(connection, settings.secret_key)
    app.state.settings = settings
    app.state.engine = engine
    app.state.search = search
    app.state.scheduler = scheduler
    app.state.feed_cache = CandidateCache()
    app.state.secret = secret
    app.state.signer = CookieSigner(secret)
    app.state.templates = make_environment(settings)
    app.state.arxiv_transport = None  # submissions' arXiv look-ups; tests replay responses
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        # Browsers ask for it wherever a page names none (email previews, raw feeds).
        return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml")

    app.include_router(routes_accounts.router)
    app.include_router(routes_lists.router)
    app.include_router(routes_community.router)
    app.include_router(routes_submit.router)
    app.include_router(routes_orgs.router)
    app.include_router(routes_moderation.router)
    app.include_router(routes_search.router)
    app.include_router(routes_personal.router)
    app.include_router(routes_digest.router)
    app.include_router(routes_feeds.router)
    app.include_router(routes_hf.router)  # before routes_papers: /papers/{id}.md
    app.include_router(routes_api.router)
    app.include_router(routes_api.docs_router)
    app.include_router(routes_papers.router)  # last: /papers/{arxiv_id:path} catches the rest
    install_error_handlers(app)
    app.add_middleware(ViewerMiddleware)
    app.add_middleware(RequestGate, slots=request_slots(engine))  # see web/gate.py
    app.add_middleware(GZipMiddleware, minimum_size=1024)
    app.add_middleware(RequestLimits, max_body_bytes=settings.max_request_body_bytes)
    # Outside the layers above: request ids, access log, metrics; /healthz, /readyz, /metrics.
    app.add_middleware(RequestObservability)
    app.add_middleware(SecurityHeaders, tls_site=settings.base_url.startswith("https://"))
    return app
