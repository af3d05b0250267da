"""Request dependencies: a database connection per request, and the settings."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

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
