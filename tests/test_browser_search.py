"""Search in a real browser: the header box, highlighted results with their math typeset, and
semantic search switching on by itself once the server's background job has embedded papers."""

from __future__ import annotations

import time

import pytest
from browser import live_server, needs_chromium
from factories import make_record, write_records
from sqlalchemy import Engine

from papertide.config import Settings
from papertide.search.models import shared_embedder

pytestmark = needs_chromium


def test_search_from_the_header_then_semantic_search_switches_on(
    engine: Engine, settings: Settings, page
) -> None:  # type: ignore[no-untyped-def]
    shared_embedder("all-MiniLM-L6-v2", "auto", 0)  # loaded once per test process
    write_records(
        engine,
        make_record(
            "2503.00001",
            title="Decoding bounds for $(k,\\ell)$-sparse codes",
            abstract="We bound list decoding of sparse codes by $n^2$ and show it is tight.",
        ),
        make_record(
            "2503.00002",
            title="Lane keeping for autonomous vehicles",
            abstract="Steering robotic cars on highways with learned perception.",
        ),
    )
    with live_server(settings.replace(embed_in_background=True)) as site:
        page.goto(site + "/")
        page.fill("#site-search-q", "decoding")
        page.press("#site-search-q", "Enter")
        page.wait_for_url("**/search?q=decoding")
        title = page.locator(".card-title").first
        assert title.locator("mark").first.inner_text() == "Decoding"
        assert title.locator(".katex").count() == 1  # the formula next to the mark still renders
        deadline = time.monotonic() + 60
        while True:  # the server embeds both papers in the background
            page.goto(site + "/search?q=self-driving+automobiles")
            if page.locator("#search-notice").count() == 0:
                break
            if time.monotonic() > deadline:
                pytest.fail("semantic search never switched on: " + page.inner_text("main"))
            time.sleep(0.5)
        assert "Lane keeping" in page.locator(".card-title").first.inner_text()
