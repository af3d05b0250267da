"""The digest's web side: subscribe, confirm, preferences, one-click unsubscribe, preview."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import smtp
from digests import TUESDAY_DIGEST, add_lists, add_subscriber, sent_on, smtp_settings
from fastapi import FastAPI
from fastapi.testclient import TestClient
from people import CSRF, SECRET, add_user, client_as
from sqlalchemy import Engine, select

from papertide.config import Settings
from papertide.db.engine import write_transaction
from papertide.db.schema import subscriptions
from papertide.digest import subscriptions as subs
from papertide.digest.sender import DigestSender
from papertide.web.app import create_app

smtp_server = smtp.smtp_server
LINK = re.compile(r"http://127\.0\.0\.1:8000(/subscriptions/\S+)")


@pytest.fixture
def app(settings: Settings, smtp_server: smtp.SmtpSink) -> Iterator[FastAPI]:
    yield create_app(
        smtp_settings(settings, smtp_server).replace(secret_key=SECRET, embed_in_background=False)
    )


def _csrf(client: TestClient, path: str = "/") -> str:
    match = CSRF.search(client.get(path).text)
    assert match
    return match.group(1)


def _subscribe(client: TestClient, email: str, **form: str) -> str:
    response = client.post(
        "/subscribe", data={"email": email, "csrf_token": _csrf(client), "next": "/", **form}
    )
    assert response.status_code == 200, response.text
    return response.text


def _state(engine: Engine, email: str) -> subs.Subscription:
    with engine.connect() as connection:
        found = subs.by_email(connection, email)
    assert found is not None
    return found


def test_double_opt_in_from_the_footer_box(
    app: FastAPI, engine: Engine, settings: Settings, smtp_server: smtp.SmtpSink
) -> None:
    add_lists(engine)
    client = TestClient(app, follow_redirects=False)
    front = client.get("/").text
    assert 'action="/subscribe"' in front and "Get trending papers in your email inbox!" in front
    page = _subscribe(client, "New.Reader@Example.org", frequency="weekly")
    assert "Check your inbox" in page and "new.reader@example.org" in page
    [confirmation] = smtp_server.wait_for(1)
    assert confirmation.recipients == ["new.reader@example.org"]
    assert _state(engine, "new.reader@example.org").state is subs.State.UNCONFIRMED
    # Nothing but the confirmation goes out before the link is followed.
    report = DigestSender(
        engine,
        smtp_settings(settings, smtp_server),
        smtp_server.mailer(),
        now=sent_on(TUESDAY_DIGEST),
    ).run([TUESDAY_DIGEST])
    assert report.planned == 0 and len(smtp_server.messages) == 1
    assert confirmation.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = LINK.search(confirmation.message.get_content())
    assert link and link.group(1).startswith("/subscriptions/confirm/")
    shown = client.get(link.group(1))  # a mail scanner's GET confirms nothing
    assert shown.status_code == 200 and "Yes, confirm my subscription" in shown.text
    assert _state(engine, "new.reader@example.org").state is subs.State.UNCONFIRMED
    done = client.post(link.group(1), data={"csrf_token": _csrf(client, link.group(1))})
    assert done.status_code == 303
    sub = _state(engine, "new.reader@example.org")
    assert sub.active and sub.frequency == "weekly"
    assert done.headers["location"] == f"/subscriptions/{sub.token}?confirmed=1"
    assert "your subscription is confirmed" in client.get(done.headers["location"]).text


def test_subscribing_again_reveals_nothing_and_is_throttled(
    app: FastAPI, engine: Engine, smtp_server: smtp.SmtpSink
) -> None:
    add_subscriber(engine, "known@example.org")
    with write_transaction(engine) as connection:  # confirmed an hour ago
        connection.execute(
            subscriptions.update().values(confirm_sent_at=datetime.now(UTC) - timedelta(hours=1))
        )
    client = TestClient(app, follow_redirects=False)
    known = _subscribe(client, "known@example.org")
    unknown = _subscribe(client, "unknown@example.org")
    assert known.replace("known@", "X@") == unknown.replace("unknown@", "X@")
    received = smtp_server.wait_for(2)
    by_address = {m.recipients[0]: m.message.get_content() for m in received}
    assert "already subscribed" in by_address["known@example.org"]
    assert "/subscriptions/confirm/" in by_address["unknown@example.org"]
    _subscribe(client, "unknown@example.org")  # within ten minutes: no second email
    assert len(smtp_server.messages) == 2
    for _ in range(2):
        client.post(
            "/subscribe", data={"email": "unknown@example.org", "csrf_token": _csrf(client)}
        )
    limited = client.post(
        "/subscribe", data={"email": "unknown@example.org", "csrf_token": _csrf(client)}
    )
    assert limited.status_code == 429 and "Retry-After" in limited.headers


def test_bad_input_gets_a_clear_4xx(app: FastAPI, engine: Engine) -> None:
    client = TestClient(app, follow_redirects=False)
    token = _csrf(client)
    bad_email = client.post("/subscribe", data={"email": "not an address", "csrf_token": token})
    assert bad_email.status_code == 400 and "is not an email address" in bad_email.text
    bad_frequency = client.post(
        "/subscribe", data={"email": "a@example.org", "frequency": "hourly", "csrf_token": token}
    )
    assert bad_frequency.status_code == 400 and "hourly" in bad_frequency.text
    forged = {"email": "a@example.org", "csrf_token": "forged"}
    assert client.post("/subscribe", data=forged).status_code == 403
    assert client.get("/subscriptions/confirm/forged.token").status_code == 400
    assert client.get("/subscriptions/nope").status_code == 404
    assert client.post("/subscriptions/nope/unsubscribe").status_code == 404
    sub = add_subscriber(engine, "prefs@example.org")
    for form, message in (
        ({"size": "100", "frequency": "daily"}, "3 to 30"),
        ({"size": "x", "frequency": "daily"}, "whole number"),
        ({"size": "5", "frequency": "monthly"}, "monthly"),
        ({"size": "5", "frequency": "daily", "include_categories": "x" * 120}, "longer than"),
    ):
        response = client.post(
            f"/subscriptions/{sub.token}", data={**form, "csrf_token": _csrf(client)}
        )
        assert response.status_code == 400 and message in response.text
    assert client.get(f"/subscriptions/{sub.token}/preview?format=pdf").status_code == 400
    assert (
        client.get(f"/subscriptions/{sub.token}/preview?period=daily:2026-11-28").status_code == 400
    )


def test_preferences_change_what_the_preview_shows(app: FastAPI, engine: Engine) -> None:
    add_lists(engine)
    sub = add_subscriber(engine, "prefs@example.org")
    client = TestClient(app, follow_redirects=False)
    page = client.get(f"/subscriptions/{sub.token}")
    assert page.status_code == 200 and page.headers["X-Robots-Tag"] == "noindex"
    saved = client.post(
        f"/subscriptions/{sub.token}",
        data={
            "csrf_token": _csrf(client),
            "frequency": "daily",
            "size": "3",
            "personal": "0",
            "exclude_categories": "cs.CV",
            "exclude_keywords": "Paper 0",
        },
    )
    assert saved.status_code == 303
    after = _state(engine, "prefs@example.org")
    assert after.size == 3 and after.exclude.categories == ("cs.CV",) and not after.personal
    preview = client.get(f"/subscriptions/{sub.token}/preview?period={TUESDAY_DIGEST.key}")
    assert preview.headers["content-type"].startswith("text/html")
    assert re.findall(r'">Paper (\d+):[^<]*</a>', preview.text) == ["2", "3", "4"]
    assert "<script" not in preview.text
    text = client.get(f"/subscriptions/{sub.token}/preview?period={TUESDAY_DIGEST.key}&format=text")
    assert text.headers["content-type"].startswith("text/plain")
    assert "#1 · 100 upvotes, #3 on Monday's list" in text.text
    # A period with nothing new says so and points at the latest one with papers.
    empty = client.get(f"/subscriptions/{sub.token}/preview?period=daily:2026-12-01")
    assert "Nothing would be sent" in empty.text
    assert f"period={TUESDAY_DIGEST.key}" in empty.text


def test_one_click_unsubscribe_from_a_received_digest(
    app: FastAPI, engine: Engine, settings: Settings, smtp_server: smtp.SmtpSink
) -> None:
    add_lists(engine)
    add_subscriber(engine, "leaving@example.org")
    DigestSender(
        engine,
        smtp_settings(settings, smtp_server),
        smtp_server.mailer(),
        now=sent_on(TUESDAY_DIGEST),
    ).run([TUESDAY_DIGEST])
    [digest] = smtp_server.wait_for(1)
    target = digest.message["List-Unsubscribe"].strip("<>")
    assert digest.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # What a mail provider does (RFC 8058): a POST with this body, no cookies, no CSRF token.
    provider = TestClient(app, follow_redirects=False)
    response = provider.post(
        target.removeprefix("http://127.0.0.1:8000"),
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200 and "You are unsubscribed" in response.text
    assert _state(engine, "leaving@example.org").state is subs.State.UNSUBSCRIBED
    again = provider.post(target.removeprefix("http://127.0.0.1:8000"))
    assert again.status_code == 200  # idempotent
    # The visible link in both parts leads to the same page, with a button.
    visible = digest.message.get_body(("plain",)).get_content()
    assert target in visible


def test_account_settings_subscribe_the_account_address(
    app: FastAPI, engine: Engine, smtp_server: smtp.SmtpSink
) -> None:
    user = add_user(engine, "grace")
    client, csrf = client_as(app, engine, user)
    settings_page = client.get("/settings").text
    assert "Subscribe grace@example.org" in settings_page
    response = client.post(
        "/subscribe",
        data={
            "email": "grace@example.org",
            "frequency": "daily",
            "csrf_token": csrf,
            "next": "/settings",
        },
    )
    assert response.status_code == 200
    with engine.connect() as connection:
        owner = connection.execute(
            select(subscriptions.c.user_id).where(subscriptions.c.email == "grace@example.org")
        ).scalar_one()
    assert owner == user.id
    assert "Digest preferences" in client.get("/settings").text
    # Someone else subscribing an account's address does not tie it to the account.
    stranger = TestClient(app, follow_redirects=False)
    other = add_user(engine, "hopper")
    _subscribe(stranger, "hopper@example.org")
    assert _state(engine, "hopper@example.org").user_id is None
    del other
