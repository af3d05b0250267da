"""Request plumbing shared by the route modules: the engine, a connection per request, the
settings, and where a form post may send the browser back to (local paths only)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request
from sqlalchemy import Connection, Engine

from papertide.config import Settings


def _connection(request: Request) -> Iterator[Connection]:
    engine: Engine = request.app.state.engine
    with engine.connect() as connection:
        yield connection


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


DbConnection = Annotated[Connection, Depends(_connection)]
AppSettings = Annotated[Settings, Depends(_settings)]


def engine_of(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def safe_next(target: str | None) -> str:
    """Only local paths: never an open redirect to another site."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


def back_to(request: Request, fallback: str) -> str:
    """The local page a form was posted from (its Referer), else ``fallback``."""
    parts = urlsplit(request.headers.get("referer", ""))
    if not parts.path or (parts.netloc and parts.netloc != request.url.netloc):
        return fallback
    return safe_next(parts.path + (f"?{parts.query}" if parts.query else ""))
