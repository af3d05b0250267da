"""Accounts over HTTP: sign-up, log-in, log-out, CSRF, fixation, rate limits, settings, resets."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from papertide.config import Settings
from papertide.web.app import create_app
from papertide.web.auth import SESSION_COOKIE

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def site_settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.replace(mail_backend="file", mail_dir=str(tmp_path / "mail"))


@pytest.fixture
def client(site_settings: Settings) -> TestClient:
    return TestClient(create_app(site_settings), follow_redirects=False)


def csrf(client: TestClient, path: str) -> str:
    match = CSRF.search(client.get(path).text)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def sign_up(client: TestClient, username: str = "ada", next: str = "/") -> None:
    token = csrf(client, "/signup")
    response = client.post(
        "/signup",
        data={
            "username": username,
            "email": f"{username}@example.org",
            "password": PASSWORD,
            "csrf_token": token,
            "next": next,
        },
    )
    assert response.status_code == 303, response.text


def log_in(client: TestClient, login: str, password: str = PASSWORD) -> int:
    token = csrf(client, "/login")
    response = client.post(
        "/login", data={"login": login, "password": password, "csrf_token": token}
    )
    return response.status_code


def use_session(client: TestClient, cookie: str) -> None:
    """Send exactly this session cookie from now on (an old or stolen one, say)."""
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, cookie)


def log_out(client: TestClient) -> None:
    token = csrf(client, "/settings")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 303


def test_sign_up_logs_in_with_a_safe_cookie(client: TestClient) -> None:
    token = csrf(client, "/signup")
    response = client.post(
        "/signup",
        data={
            "username": "ada",
            "email": "ada@example.org",
            "password": PASSWORD,
            "csrf_token": token,
            "next": "/papers/trending",
        },
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/papers/trending"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert ">ada</a>" in client.get("/").text


def test_forms_without_the_csrf_token_are_refused(client: TestClient) -> None:
    data = {"username": "ada", "email": "ada@example.org", "password": PASSWORD}
    response = client.post("/signup", data={**data, "csrf_token": "forged"})
    assert response.status_code == 403 and "did not come from this site" in response.text
    missing = client.post("/signup", data=data)  # no token at all: refused alike
    assert missing.status_code == 403 and "did not come from this site" in missing.text
    sign_up(client)
    assert client.post("/logout", data={"csrf_token": "forged"}).status_code == 403


def test_log_in_makes_a_new_session_and_log_out_revokes_it(client: TestClient) -> None:
    sign_up(client)
    first = client.cookies[SESSION_COOKIE]
    assert log_in(client, "ada") == 303
    second = client.cookies[SESSION_COOKIE]
    assert second != first  # no session fixation: every log-in gets a fresh id
    use_session(client, first)
    assert ">ada</a>" not in client.get("/").text  # the replaced session was revoked
    use_session(client, second)
    log_out(client)
    use_session(client, second)
    assert client.get("/settings").status_code == 303  # revoked on the server


def test_wrong_password_and_unknown_user_say_the_same(client: TestClient) -> None:
    sign_up(client)
    log_out(client)
    assert log_in(client, "ada", "wrong password!!") == 400
    token = csrf(client, "/login")
    for login, password in (("ada", "wrong password!!"), ("nobody", PASSWORD)):
        response = client.post(
            "/login", data={"login": login, "password": password, "csrf_token": token}
        )
        assert response.status_code == 400
        assert "wrong username, email or password" in response.text


def test_log_in_is_rate_limited_per_account(client: TestClient) -> None:
    sign_up(client)
    log_out(client)
    codes = [log_in(client, "ada", f"wrong password {n}") for n in range(11)]
    assert codes[:10] == [400] * 10
    assert codes[10] == 429
    token = csrf(client, "/login")
    response = client.post(
        "/login", data={"login": "ada", "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 429
    assert "too many log-in attempts for this account" in response.text
    assert int(response.headers["retry-after"]) > 0


def test_pages_that_need_an_account_send_you_to_log_in(client: TestClient) -> None:
    response = client.get("/settings")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fsettings"
    json = client.get("/settings", headers={"accept": "application/json"})
    assert json.status_code == 401 and json.json()["error"]["code"] == "login_required"


def test_next_never_leaves_the_site(client: TestClient) -> None:
    sign_up(client, next="//evil.example.org/phish")
    log_out(client)
    token = csrf(client, "/login")
    response = client.post(
        "/login",
        data={"login": "ada", "password": PASSWORD, "csrf_token": token,
              "next": "https://evil.example.org"},
    )  # fmt: skip
    assert response.headers["location"] == "/"


def test_api_tokens_from_the_settings_page(client: TestClient) -> None:
    sign_up(client)
    token = csrf(client, "/settings")
    page = client.post("/settings/tokens", data={"name": "my script", "csrf_token": token})
    raw = re.search(r"pt_[A-Za-z0-9_-]{30,}", page.text)
    assert raw, "the new token is shown once"
    listed = client.get("/settings").text
    assert "my script" in listed and raw.group(0) not in listed
    token_id = re.search(r"/settings/tokens/(\d+)/revoke", listed)
    assert token_id
    revoked = client.post(
        f"/settings/tokens/{token_id.group(1)}/revoke", data={"csrf_token": token}
    )
    assert revoked.status_code == 303
    assert "my script" not in client.get("/settings").text


def test_change_password_keeps_this_session_only(client: TestClient) -> None:
    sign_up(client)
    token = csrf(client, "/settings")
    wrong = client.post(
        "/settings/password",
        data={"current_password": "not it at all", "new_password": "another passphrase",
              "csrf_token": token},
    )  # fmt: skip
    assert wrong.status_code == 400
    done = client.post(
        "/settings/password",
        data={"current_password": PASSWORD, "new_password": "another passphrase",
              "csrf_token": token},
    )  # fmt: skip
    assert done.status_code == 303
    assert client.get("/settings").status_code == 200
    log_out(client)
    assert log_in(client, "ada", PASSWORD) == 400
    assert log_in(client, "ada", "another passphrase") == 303


def test_password_reset_by_emailed_link(client: TestClient, site_settings: Settings) -> None:
    sign_up(client)
    log_out(client)
    token = csrf(client, "/reset-password")
    for email in ("ada@example.org", "nobody@example.org"):
        response = client.post("/reset-password", data={"email": email, "csrf_token": token})
        assert response.status_code == 200 and "If an account uses" in response.text
    sent = list(Path(site_settings.mail_dir).glob("*.eml"))
    assert len(sent) == 1  # only the real account gets mail; the page says the same for both
    message = message_from_bytes(sent[0].read_bytes(), policy=policy.default)
    assert message["To"] == "ada@example.org" and message["Message-ID"]
    link = re.search(r"http://\S+/reset-password/(\S+)", message.get_content())  # type: ignore[attr-defined]
    assert link
    path = f"/reset-password/{link.group(1)}"
    response = client.post(
        path, data={"new_password": "a fresh passphrase", "csrf_token": csrf(client, path)}
    )
    assert response.status_code == 303
    assert client.get("/settings").status_code == 200
    again = client.post(
        path, data={"new_password": "a third passphrase", "csrf_token": csrf(client, path)}
    )
    assert again.status_code == 400 and "invalid or has expired" in again.text


def test_user_create_cli_makes_the_first_admin(db_url: str, engine: Engine) -> None:
    from click.testing import CliRunner

    from papertide.cli import cli

    result = CliRunner().invoke(
        cli,
        ["user", "create", "root-admin", "--email", "root@example.org", "--admin"],
        env={"PAPERTIDE_DATABASE_URL": db_url, "PAPERTIDE_NEW_PASSWORD": PASSWORD},
    )
    assert result.exit_code == 0, result.output
    assert "created admin root-admin" in result.output
    with engine.connect() as connection:
        role = connection.exec_driver_sql("SELECT role FROM users").scalar_one()
    assert role == "admin"
