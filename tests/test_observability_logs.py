"""Request ids, the access log, errors with tracebacks, and secrets kept out of the log."""

from __future__ import annotations

import io
import logging
import re

import observing
import pytest
import smtp
from digests import add_subscriber
from fastapi import FastAPI
from fastapi.testclient import TestClient
from observing import (
    LOCAL,
    SECRET_KEY,
    SMTP_PASSWORD,
    capture,
    closed_port,
    json_lines,
    unreachable_url,
)
from people import CSRF, SECRET
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from papertide.accounts.tokens import create_token
from papertide.accounts.users import create_user
from papertide.config import Settings
from papertide.db.engine import make_engine, write_transaction
from papertide.personal.feed_tokens import create_token as create_feed_token
from papertide.web.app import create_app

app = observing.app
client = observing.client
logs = observing.logs
smtp_server = smtp.smtp_server


# --- request ids and logs ----------------------------------------------------------------------


def test_request_ids_and_the_access_log(
    app: FastAPI, client: TestClient, settings: Settings, logs: list[io.StringIO]
) -> None:
    stream = capture(logs, settings.replace(log_format="json"))
    given = client.get(
        "/api/v1/papers?limit=1",
        headers={"X-Request-ID": "edge-42.a:b", "Accept-Encoding": "identity"},
    )
    assert given.headers["x-request-id"] == "edge-42.a:b"
    for bad in (b"x" * 129, b"a b", b"a\tb", "ä".encode(), b"a\\b"):
        replaced = client.get("/healthz", headers={"X-Request-ID": bad})
        assert re.fullmatch(r"[0-9a-f]{32}", replaced.headers["x-request-id"])
    lines = [line for line in json_lines(stream) if line["logger"] == "papertide.access"]
    assert len(lines) == 1  # probes that succeed are logged at debug level only
    line = lines[0]
    assert line["request_id"] == "edge-42.a:b"
    assert line["route"] == "/api/v1/papers" and line["method"] == "GET"
    assert line["status"] == 200 and line["client"] == "127.0.0.1"
    assert isinstance(line["duration_ms"], float) and line["bytes"] == len(given.content)
    assert {"time", "level", "message"} <= set(line)
    assert logging.getLogger("uvicorn.access").disabled


def test_records_made_during_a_request_carry_its_id(
    settings: Settings, smtp_server: smtp.SmtpSink, logs: list[io.StringIO]
) -> None:
    # A failing SMTP send, logged from inside a synchronous endpoint (a thread of the pool).
    failing = settings.replace(
        secret_key=SECRET,
        mail_backend="smtp",
        smtp_host=smtp_server.host,
        smtp_port=closed_port(),
        smtp_security="none",
        smtp_timeout=2,
    )
    stream = capture(logs, failing.replace(log_format="json"))
    client = TestClient(create_app(failing), client=LOCAL)
    csrf = CSRF.search(client.get("/subscribe").text)
    assert csrf
    form = {"email": "ada@example.org", "csrf_token": csrf.group(1), "next": "/"}
    response = client.post("/subscribe", data=form, headers={"X-Request-ID": "req-smtp-1"})
    assert response.status_code == 503
    mine = [line for line in json_lines(stream) if line["request_id"] == "req-smtp-1"]
    assert any("subscription email to ada@example.org failed" in str(r["message"]) for r in mine)
    assert any(r["logger"] == "papertide.access" and r["status"] == 503 for r in mine)


def test_an_unexpected_error_is_logged_once_with_its_traceback(
    app: FastAPI, client: TestClient, settings: Settings, logs: list[io.StringIO]
) -> None:
    stream = capture(logs, settings.replace(log_format="json"))

    def broken(paper_id: str) -> None:
        raise ZeroDivisionError(f"a bug while showing {paper_id}")

    app.add_api_route("/broken/{paper_id}", broken)
    headers = {"X-Request-ID": "req-500", "Accept": "application/json"}
    response = client.get("/broken/tok-123", headers=headers)
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert response.headers["x-request-id"] == "req-500"
    assert response.headers["x-content-type-options"] == "nosniff"  # still the security headers
    lines = [line for line in json_lines(stream) if line["request_id"] == "req-500"]
    errors = [line for line in lines if "exc" in line]
    assert len(errors) == 1
    assert errors[0]["message"] == "GET /broken/{paper_id} failed"
    assert "ZeroDivisionError: a bug while showing tok-123" in str(errors[0]["exc"])
    access = [line for line in lines if line["logger"] == "papertide.access"]
    assert len(access) == 1 and access[0]["status"] == 500 and access[0]["level"] == "WARNING"


def test_text_format(client: TestClient, settings: Settings, logs: list[io.StringIO]) -> None:
    stream = capture(logs, settings)
    client.get("/api/v1/papers", headers={"X-Request-ID": "req-text"})
    logging.getLogger("papertide.jobs").info("job %s ran", "trending", extra={"duration_ms": 12})
    text_lines = stream.getvalue().splitlines()
    assert any(
        re.fullmatch(
            r"\S+ \S+ INFO papertide.access \[req-text\] GET /api/v1/papers 200 .* 127\.0\.0\.1",
            line,
        )
        for line in text_lines
    ), text_lines
    assert any(line.endswith("[-] job trending ran duration_ms=12") for line in text_lines)


# --- secrets -----------------------------------------------------------------------------------

DB_PASSWORD = "db-pa55-k3y-r4t"
USER_PASSWORD = "correct horse battery staple 42"


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_secrets_are_never_logged(
    settings: Settings,
    engine_name: str,
    smtp_server: smtp.SmtpSink,
    logs: list[io.StringIO],
    log_format: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = make_url(settings.database_url)
    if engine_name == "postgresql":  # the test server trusts its socket: any password passes
        url = url.set(password=DB_PASSWORD)
    secret_settings = settings.replace(
        database_url=url.render_as_string(hide_password=False),
        secret_key=SECRET_KEY,
        mail_backend="smtp",
        smtp_host=smtp_server.host,
        smtp_port=closed_port(),
        smtp_security="none",
        smtp_username="mailer",
        smtp_password=SMTP_PASSWORD,
        smtp_timeout=2,
        embed_in_background=False,
        log_format=log_format,
        log_level="debug",
    )
    stream = capture(logs, secret_settings)
    # The test's own HTTP client logs each URL it asks for: that is not the server's log.
    monkeypatch.setattr(logging.getLogger("httpx2"), "disabled", True)
    app = create_app(secret_settings)  # start-up: engine, schema check, site secret
    engine: Engine = app.state.engine
    with write_transaction(engine) as connection:
        user = create_user(connection, "ada", "ada@example.org", USER_PASSWORD)
        _, api_token = create_token(connection, user, "laptop")
        _, feed_token = create_feed_token(connection, user)
    sub = add_subscriber(engine, "grace@example.org")
    client = TestClient(app, client=LOCAL, follow_redirects=False)

    def csrf(path: str) -> str:
        found = CSRF.search(client.get(path).text)
        assert found
        return found.group(1)

    # A failing SMTP send (the confirmation email), and a password-reset email that fails too.
    form = {"email": "bob@example.org", "csrf_token": csrf("/subscribe"), "next": "/"}
    assert client.post("/subscribe", data=form).status_code == 503
    form = {"email": "ada@example.org", "csrf_token": csrf("/reset-password")}
    assert client.post("/reset-password", data=form).status_code == 200
    # Logging in, wrongly then rightly, and a page with the session cookie.
    form = {"login": "ada", "password": USER_PASSWORD + "x", "csrf_token": csrf("/login")}
    assert client.post("/login", data=form).status_code == 400
    form = {"login": "ada", "password": USER_PASSWORD, "csrf_token": csrf("/login")}
    assert client.post("/login", data=form).status_code == 303
    session_cookie = client.cookies["pt_session"]
    assert client.get("/settings").status_code == 200
    # An API token, good and unknown; secret tokens in paths and query strings.
    bearer = {"Authorization": f"Bearer {api_token}"}
    assert client.get("/api/v1/me", headers=bearer).status_code == 200
    wrong = api_token[:-4] + "abcd"
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {wrong}"}).status_code == 401
    assert client.get(f"/subscriptions/{sub.token}").status_code == 200
    assert client.get(f"/feeds/for-you/{feed_token}.atom").status_code == 200
    assert client.get("/reset-password/rst-secret-token-123").status_code == 200
    assert client.get("/search?q=x&token=qs-secret-456").status_code == 200
    # Readiness against an unreachable database whose URL carries a password.
    app.state.engine = make_engine(unreachable_url(password="pg-unreachable-pw-789"))
    assert client.get("/readyz").status_code == 503
    app.state.engine = engine

    logged = stream.getvalue()
    assert "papertide.access" in logged and "/subscriptions/{token}" in logged
    assert "failed" in logged  # the SMTP failures were logged, without the password
    for secret in (
        SECRET_KEY,
        SMTP_PASSWORD,
        DB_PASSWORD,
        USER_PASSWORD,
        session_cookie,
        session_cookie.split(".")[0],
        api_token,
        wrong,
        feed_token,
        sub.token,
        "rst-secret-token-123",
        "qs-secret-456",
        "pg-unreachable-pw-789",
    ):
        assert secret not in logged, f"{secret!r} was logged"


def test_secret_settings_are_redacted_whatever_logs_them(
    settings: Settings, logs: list[io.StringIO]
) -> None:
    stream = capture(logs, settings.replace(smtp_password="hunter2-long", log_format="json"))
    logging.getLogger("papertide.test").warning("connecting with %s", "hunter2-long")
    try:
        raise RuntimeError("login refused for password hunter2-long")
    except RuntimeError:
        logging.getLogger("papertide.test").exception("failed")
    assert "hunter2-long" not in stream.getvalue()
    assert stream.getvalue().count("***") >= 2
