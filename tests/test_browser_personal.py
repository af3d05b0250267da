"""The For you page in a real browser: onboarding by topic, reasons on cards, and "Not
interested" taking a card away."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from browser import live_server, needs_chromium
from factories import make_record, write_records
from people import SECRET, add_user, start_session
from sqlalchemy import Engine

from papertide.catalog.records import Version
from papertide.config import Settings
from papertide.search.models import shared_embedder
from papertide.search.pipeline import embed_missing
from papertide.web.auth import SESSION_COOKIE

pytestmark = needs_chromium


def test_onboarding_reasons_and_not_interested(engine: Engine, settings: Settings, page) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    titles = [
        "Protein structure prediction with equivariant networks",
        "Folding amino acid chains with diffusion models",
        "Quantum error correction with surface codes",
    ]
    write_records(
        engine,
        *[
            make_record(
                f"2511.0000{n}",
                title=t,
                abstract=f"{t}.",
                versions=[Version(1, now - timedelta(days=n))],
            )
            for n, t in enumerate(titles, start=1)
        ],
    )
    embed_missing(engine, shared_embedder("all-MiniLM-L6-v2", "auto", 0))
    cookie, _csrf = start_session(engine, add_user(engine, "ada"))
    with live_server(settings.replace(secret_key=SECRET, embed_in_background=False)) as site:
        page.context.add_cookies([{"name": SESSION_COOKIE, "value": cookie, "url": site}])
        page.goto(site + "/for-you")
        assert page.locator("#cold-start").count() == 1
        page.click("text=Pick topics or a few papers")
        page.fill("#f-topics", "protein folding")
        page.click("text=Save and see my feed")
        page.wait_for_url("**/for-you")
        first = page.locator(".card").first
        assert "Matches your topic “protein folding”" in first.inner_text()
        gone = first.locator(".card-title").inner_text()
        first.locator("button.dismiss-button").click()
        page.wait_for_url("**/for-you")
        assert gone not in page.locator("main").inner_text()
        assert page.locator(".card").count() == 2
