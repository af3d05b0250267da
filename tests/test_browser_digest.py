"""The digest in a real browser: subscribe from the footer, confirm from the emailed link,
change preferences, preview the digest, unsubscribe."""

from __future__ import annotations

import re

import smtp
from browser import live_server, needs_chromium
from digests import add_lists, smtp_settings
from people import SECRET
from sqlalchemy import Engine

from papertide.config import Settings

pytestmark = needs_chromium
smtp_server = smtp.smtp_server


def test_subscribe_confirm_preferences_preview_unsubscribe(  # type: ignore[no-untyped-def]
    engine: Engine, settings: Settings, smtp_server: smtp.SmtpSink, page
) -> None:
    add_lists(engine)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    site_settings = smtp_settings(settings, smtp_server).replace(
        secret_key=SECRET, embed_in_background=False, scheduler=False
    )
    with live_server(site_settings) as site:
        page.goto(site + "/")
        footer = page.locator("footer .subscribe-box")
        footer.locator("input[type=email]").fill("reader@example.org")
        footer.locator("select").select_option("weekly")
        footer.locator("button").click()
        page.wait_for_url("**/subscribe")
        assert "Check your inbox" in page.locator("h1").inner_text()

        [confirmation] = smtp_server.wait_for(1)
        link = re.search(
            r"http://127\.0\.0\.1:8000(/subscriptions/confirm/\S+)",
            confirmation.message.get_content(),
        )
        assert link
        page.goto(site + link.group(1))
        page.click("text=Yes, confirm my subscription")
        page.wait_for_url(re.compile(r".*/subscriptions/[^/]+\?confirmed=1$"))
        assert "your subscription is confirmed" in page.locator("main").inner_text()
        preferences = page.url.split("?")[0]

        page.fill("#f-size", "3")
        page.fill("#f-exclude-categories", "cs.CV")
        page.click("text=Save preferences")
        page.wait_for_url("**?saved=1")
        assert page.input_value("#f-size") == "3"
        assert page.input_value("#f-exclude-categories") == "cs.CV"
        assert page.is_checked("input[name=frequency][value=weekly]")

        # This week has no lists yet: the page says so and offers the latest week with papers.
        page.click("text=Preview the next digest")
        page.click("text=Preview the digest of week 48")
        titles = page.locator("a[href*='/papers/2611.']:not([href$='/pdf'])").all_inner_texts()
        shown = [t for t in titles if t.startswith("Paper ") and ":" in t]
        assert [t.split(":")[0] for t in shown] == ["Paper 0", "Paper 2", "Paper 3"]
        assert "α-divergences" in shown[0]  # math reads as text

        page.goto(preferences)
        page.click("text=Unsubscribe reader@example.org")
        assert "You are unsubscribed" in page.locator("h1").inner_text()
    assert problems == []
