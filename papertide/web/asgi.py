"""The app as uvicorn's worker processes build it: ``papertide serve --workers N`` starts N
processes that each call :func:`app` (settings from the environment and ``PAPERTIDE_CONFIG``).
Also usable behind any ASGI server: ``uvicorn --factory papertide.web.asgi:app``."""

from __future__ import annotations

from fastapi import FastAPI

from papertide.config import load_settings
from papertide.observability.logs import configure_logging
from papertide.web.app import create_app


def app() -> FastAPI:
    settings = load_settings()
    configure_logging(settings)  # in each worker: uvicorn's log set-up stays in the parent
    return create_app(settings)
