"""Accounts in the domain layer: users, passwords, sessions, API tokens, rate limits, resets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from papertide.accounts import resets, sessions, tokens, users
from papertide.accounts.ratelimit import Limit, enforce
from papertide.db.engine import write_transaction
from papertide.errors import Conflict, InvalidInput, RateLimited

PASSWORD = "correct horse battery"


def make_user(engine: Engine, name: str = "ada", **kwargs: object) -> users.User:
    with write_transaction(engine) as connection:
        return users.create_user(connection, name, f"{name}@example.org", PASSWORD, **kwargs)  # type: ignore[arg-type]


def test_create_and_authenticate(engine: Engine) -> None:
    ada = make_user(engine, "Ada_L")
    assert ada.username == "Ada_L" and ada.role is users.Role.USER
    with write_transaction(engine) as connection:
        assert users.authenticate(connection, "ada_l", PASSWORD) == ada
        assert users.authenticate(connection, "ADA_L@example.org", PASSWORD) == ada
        assert users.authenticate(connection, "ada_l", "wrong password!") is None
        assert users.authenticate(connection, "nobody", PASSWORD) is None
        stored = connection.exec_driver_sql("SELECT password_hash FROM users").scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_usernames_and_emails_are_unique_ignoring_case(engine: Engine) -> None:
    make_user(engine, "ada")
    with (
        pytest.raises(Conflict, match="username 'ADA' already exists"),
        write_transaction(engine) as connection,
    ):
        users.create_user(connection, "ADA", "other@example.org", PASSWORD)
    with (
        pytest.raises(Conflict, match="email already exists"),
        write_transaction(engine) as connection,
    ):
        users.create_user(connection, "bob", "Ada@Example.org", PASSWORD)


@pytest.mark.parametrize(
    ("username", "email", "password", "message"),
    [
        ("a", "a@example.org", PASSWORD, "3 to 40"),
        ("<script>", "s@example.org", PASSWORD, "3 to 40"),
        ("admin", "x@example.org", PASSWORD, "reserved"),
        ("bob", "not-an-email", PASSWORD, "not an email"),
        ("bob", "bob@example.org", "short", "at least 10"),
        ("bobby", "b@example.org", "bobby-is-my-password", "must not contain"),
    ],
)
def test_sign_up_rules(
    engine: Engine, username: str, email: str, password: str, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message), write_transaction(engine) as connection:
        users.create_user(connection, username, email, password)


def test_sessions_expire_and_are_revoked(engine: Engine) -> None:
    ada = make_user(engine)
    now = datetime.now(UTC)
    with write_transaction(engine) as connection:
        first = sessions.create_session(connection, ada, ip="127.0.0.1", user_agent="t", now=now)
        second = sessions.create_session(connection, ada, ip="127.0.0.1", user_agent="t", now=now)
    assert first != second
    with engine.connect() as connection:
        session = sessions.load_session(connection, first, now)
        assert session is not None and session.user == ada
        assert sessions.load_session(connection, first, now + timedelta(days=31)) is None
        assert sessions.load_session(connection, "forged", now) is None
    with write_transaction(engine) as connection:
        sessions.revoke_user_sessions(connection, ada, keep=second)
    with engine.connect() as connection:
        assert sessions.load_session(connection, first) is None
        assert sessions.load_session(connection, second) is not None


def test_suspended_users_lose_their_sessions(engine: Engine) -> None:
    ada = make_user(engine)
    with write_transaction(engine) as connection:
        raw = sessions.create_session(connection, ada, ip=None, user_agent=None)
        users.set_suspended(connection, ada, True, datetime.now(UTC))
    with engine.connect() as connection:
        assert sessions.load_session(connection, raw) is None


def test_cookie_signature(engine: Engine) -> None:
    with write_transaction(engine) as connection:
        secret = sessions.site_secret(connection, "")
        assert sessions.site_secret(connection, "") == secret  # generated once, then kept
    signer = sessions.CookieSigner(secret)
    cookie = signer.sign("session-id")
    assert signer.unsign(cookie) == "session-id"
    assert signer.unsign(cookie[:-2] + "xx") is None
    assert sessions.CookieSigner("another secret").unsign(cookie) is None


def test_api_tokens(engine: Engine) -> None:
    ada, bob = make_user(engine, "ada"), make_user(engine, "bob")
    with write_transaction(engine) as connection:
        token, raw = tokens.create_token(connection, ada, "digest script")
    assert raw.startswith("pt_") and token.prefix == raw[:10]
    with engine.connect() as connection:
        assert tokens.user_for_token(connection, raw) == ada
        assert [t.name for t in tokens.list_tokens(connection, ada)] == ["digest script"]
        assert tokens.list_tokens(connection, bob) == []
    with (
        pytest.raises(Exception, match=f"no token {token.id}"),
        write_transaction(engine) as connection,
    ):
        tokens.revoke_token(connection, bob, token.id)  # not bob's: as if missing
    with write_transaction(engine) as connection:
        tokens.revoke_token(connection, ada, token.id)
    with engine.connect() as connection:
        assert tokens.user_for_token(connection, raw) is None


def test_rate_limit_counts_refused_attempts_and_resets(engine: Engine) -> None:
    limit = Limit(3, 60, "log-in attempts")
    start = 1_000_000_020.0
    for _ in range(3):
        enforce(engine, [("login:ip:1.2.3.4", limit)], now=start)
    with pytest.raises(RateLimited, match="too many log-in attempts") as info:
        enforce(engine, [("login:ip:1.2.3.4", limit)], now=start + 1)
    assert 0 < info.value.retry_after <= 60
    enforce(engine, [("login:ip:5.6.7.8", limit)], now=start + 1)  # other keys unaffected
    enforce(engine, [("login:ip:1.2.3.4", limit)], now=start + 60)  # next window


def test_password_reset_is_single_use_and_logs_out_everywhere(engine: Engine) -> None:
    ada = make_user(engine)
    with write_transaction(engine) as connection:
        old_session = sessions.create_session(connection, ada, ip=None, user_agent=None)
        assert resets.start_reset(connection, "nobody@example.org") is None
        started = resets.start_reset(connection, "ADA@example.org")
    assert started is not None
    _, raw = started
    with write_transaction(engine) as connection:
        resets.finish_reset(connection, raw, "a brand new passphrase")
    with (
        pytest.raises(InvalidInput, match="invalid or has expired"),
        write_transaction(engine) as connection,
    ):
        resets.finish_reset(connection, raw, "yet another passphrase")
    with write_transaction(engine) as connection:
        assert users.authenticate(connection, "ada", "a brand new passphrase") == ada
        assert sessions.load_session(connection, old_session) is None
