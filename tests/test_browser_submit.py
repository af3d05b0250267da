"""Submitting a paper in a real browser: log in, submit a paper by its arXiv URL (fetched from
replayed arXiv responses), then find it on today's list."""

from __future__ import annotations

from collections.abc import Iterator

import browser
import pytest
from browser import live_server, needs_chromium
from fastapi import FastAPI
from sqlalchemy import Engine
from test_moderation import PASSWORD, make_user
from test_submissions import FETCHED, ArxivReplay

from papertide.config import Settings
from papertide.web.app import create_app

pytestmark = needs_chromium


@pytest.fixture
def site(engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    make_user(engine, "ada")
    replay = ArxivReplay(shift=True)

    def app_with_replay(settings: Settings) -> FastAPI:
        app = create_app(settings)
        app.state.arxiv_transport = replay.transport()
        return app

    monkeypatch.setattr(browser, "create_app", app_with_replay)
    with live_server(settings) as url:
        yield url


def test_log_in_submit_by_url_and_find_it_on_todays_list(site: str, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{site}/")
    page.get_by_role("link", name="Submit a paper").click()
    page.wait_for_url("**/login?next=%2Fsubmit")
    page.fill("#f-login", "ada")
    page.fill("#f-password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/submit")
    page.fill("#f-paper", f"https://arxiv.org/abs/{FETCHED}v2")
    page.fill("#f-comment", "A good read on community ranking.")
    page.get_by_role("button", name="Submit").click()
    page.wait_for_url(f"**/submit?done={FETCHED}")
    assert "is on today’s list" in page.inner_text("[role=status]")
    page.get_by_role("link", name="today’s list").click()
    page.wait_for_load_state("load")
    title = page.locator(".card-title").filter(has_text="Constructed Tides")
    assert title.count() == 1
    assert "No papers yet for today" not in page.inner_text("body")
