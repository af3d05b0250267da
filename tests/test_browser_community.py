"""Community in a real browser: sign up, log in, upvote without a reload, comment with markdown
and math (typeset by KaTeX), an XSS payload that stays inert, a reply, log out."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from browser import live_server, needs_chromium
from factories import listed, make_record, write_records
from sqlalchemy import Engine

from papertide.config import Settings

pytestmark = needs_chromium

DAY = date(2025, 5, 2)
PASSWORD = "correct horse battery"
XSS = '<img src=x onerror="alert(1)"> <script>alert(2)</script> [click](javascript:alert(3))'


@pytest.fixture
def site(engine: Engine, settings: Settings) -> Iterator[str]:
    write_records(
        engine,
        make_record("2505.00001", title="Sparse attention", upvotes=41, listing=listed(DAY, 0)),
        make_record("2505.00002", title="Dense baselines", upvotes=3, listing=listed(DAY, 1)),
    )
    with live_server(settings) as url:
        yield url


def sign_up_and_log_in_again(site: str, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{site}/signup")
    page.fill("#f-username", "ada")
    page.fill("#f-email", "ada@example.org")
    page.fill("#f-password", PASSWORD)
    page.click("button:has-text('Sign up')")
    page.wait_for_url(f"{site}/")
    page.click("button:has-text('Log out')")
    page.wait_for_url(f"{site}/")
    page.click(".account-nav a:has-text('Log in')")
    page.fill("#f-login", "ada")
    page.fill("#f-password", PASSWORD)
    page.click("main button:has-text('Log in')")
    page.wait_for_url(f"{site}/")
    assert page.locator(".account-nav a[href='/settings']").inner_text() == "ada"


def test_vote_comment_reply_and_log_out(site: str, page) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    sign_up_and_log_in_again(site, page)

    # Upvote on the day's list: the count changes in place, with no navigation.
    page.goto(f"{site}/papers/date/{DAY.isoformat()}")
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    page.evaluate("window.__still_here = true")
    first = page.locator(".card").first
    button, count = first.locator(".vote-button"), first.locator(".votes-count")
    assert count.inner_text() == "41"
    assert button.get_attribute("aria-pressed") == "false"
    button.click()
    expect(count).to_have_text("42")
    assert button.get_attribute("aria-pressed") == "true"
    assert page.evaluate("window.__still_here") is True and navigations == []
    button.click()  # and back
    expect(count).to_have_text("41")
    button.click()
    expect(count).to_have_text("42")
    assert navigations == []
    page.reload()
    assert page.locator(".card .votes-count").first.inner_text() == "42"
    assert page.locator(".card .vote-button").first.get_attribute("aria-pressed") == "true"

    # Comment with markdown, math and a hostile payload.
    page.goto(f"{site}/papers/2505.00001")
    assert page.locator(".paper-actions .vote-button").get_attribute("aria-pressed") == "true"
    page.fill(
        "#comment-new",
        f"**Bold** claim: $E = mc^2$, @ada.\n\n$$\n\\int_0^1 x\\,dx = \\frac12\n$$\n\n{XSS}",
    )
    page.click(".comment-new button[type=submit]")
    page.wait_for_url(f"{site}/papers/2505.00001#comment-*")
    body = page.locator(".comment-body").first
    assert body.locator("strong").inner_text() == "Bold"
    page.wait_for_selector(".comment-body .katex")
    assert body.locator(".katex").count() == 2
    assert body.locator(".katex-display").count() == 1
    assert body.locator("a.mention").get_attribute("href") == "/users/ada"
    assert page.locator(".comment-body img").count() == 0
    assert page.locator(".comment-body script").count() == 0
    assert page.locator(".comment-body a[href^='javascript']").count() == 0
    assert '<img src=x onerror="alert(1)">' in body.inner_text()
    assert page.dialogs == []

    # Reply through the <details> form.
    page.click(".comment-actions summary:has-text('Reply')")
    reply_box = page.locator(".comment-actions textarea[id^='reply-']").first
    reply_box.fill("A *reply* with $x_1$.")
    page.locator(".comment-actions details[open] button:has-text('Reply')").click()
    page.wait_for_url(f"{site}/papers/2505.00001#comment-*")
    reply = page.locator(".comment-replies .comment-body").first
    assert reply.locator("em").inner_text() == "reply"
    page.wait_for_selector(".comment-replies .katex")
    assert page.locator(".discussion-count").inner_text() == "2"
    assert page.dialogs == []

    # Log out.
    page.click("button:has-text('Log out')")
    page.wait_for_url(f"{site}/")
    assert page.locator(".account-nav a:has-text('Log in')").count() == 1
    page.goto(f"{site}/papers/2505.00001")
    assert page.locator(".vote-form").count() == 0
    assert page.locator("a.vote-button").count() == 1
    assert page.dialogs == []
