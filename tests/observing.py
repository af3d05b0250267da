"""Helpers of the observability tests: an app and a loopback client, captured logs, scrapes."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest
import smtp
from fastapi import FastAPI
from fastapi.testclient import TestClient
from people import SECRET
from prometheus_client.parser import text_string_to_metric_families

from papertide.config import Settings
from papertide.observability.logs import configure_logging
from papertide.web.app import create_app

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
SECRET_KEY = "sk-7f3a9c1e5b2d8f4a6c0e9b1d3f5a7c9e"
SMTP_PASSWORD = "smtp-Pa55-wd-q9z8x7"

LOCAL = ("127.0.0.1", 50000)


def closed_port() -> int:
    return smtp.free_port()  # bound, then released: nothing listens there


def unreachable_url(password: str = "pw-unreachable") -> str:
    return f"postgresql://papertide:{password}@127.0.0.1:{closed_port()}/papertide"


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings.replace(secret_key=SECRET, embed_in_background=False))


@pytest.fixture
def client(app: FastAPI) -> TestClient:
    return TestClient(app, client=LOCAL, follow_redirects=False)


@pytest.fixture
def logs() -> Iterator[list[io.StringIO]]:
    """Restores the root logger after a test that called configure_logging."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    access = logging.getLogger("uvicorn.access")
    streams: list[io.StringIO] = []
    yield streams
    root.handlers[:] = handlers
    root.setLevel(level)
    access.disabled = False


def capture(streams: list[io.StringIO], settings: Settings) -> io.StringIO:
    stream = io.StringIO()
    configure_logging(settings, stream)
    streams.append(stream)
    return stream


def json_lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines() if line]


def scrape(client: TestClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    values = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def requests_of(values: Samples, route: str) -> float:
    return sum(
        value
        for (name, labels), value in values.items()
        if name == "papertide_http_requests_total" and dict(labels)["route"] == route
    )
