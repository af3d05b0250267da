"""The app as uvicorn's worker processes build it: ``papertide serve --workers N`` starts N
processes that each call :func:`app` (settings from the environment and ``PAPERTIDE_CONFIG``).
Also usable behind any ASGI server: ``uvicorn --factory papertide.web.asgi:app``.

Proxy headers (X-Forwarded-For, X-Forwarded-Proto) are the server's business, not the app's:
``papertide serve`` passes the ``trusted_proxies`` setting to uvicorn (``forwarded_allow_ips``)
in both its single-process and its ``--workers`` form; a server started by hand needs the same,
e.g. ``uvicorn --factory papertide.web.asgi:app --forwarded-allow-ips 10.0.0.5``
(docs/security.md)."""

from __future__ import annotations

from fastapi import FastAPI

from papertide.config import load_settings
from papertide.observability.logs import configure_logging
from papertide.web.app import create_app


def app() -> FastAPI:
    settings = load_settings()
    configure_logging(settings)  # in each worker: uvicorn's log set-up stays in the parent
    return create_app(settings)
