"""Test helpers for the community tests: users, sessions, and HTTP clients logged in as them.

Users are inserted directly (no argon2 work, no sign-up rate limit) and get a session the way a
log-in makes one, so a test can have many people at once.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert

from papertide.accounts.sessions import CookieSigner, create_session, load_session
from papertide.accounts.users import Role, User, user_by_username
from papertide.db.engine import write_transaction
from papertide.db.schema import users
from papertide.web.auth import SESSION_COOKIE

SECRET = "community-tests-secret-key-0123456789"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def add_user(
    engine: Engine, username: str, role: Role = Role.USER, *, votes_public: bool = True
) -> User:
    with write_transaction(engine) as connection:
        connection.execute(
            insert(users).values(
                username=username,
                username_key=username.lower(),
                email=f"{username.lower()}@example.org",
                password_hash="!",  # no password: these users log in by session only
                role=role.value,
                votes_public=votes_public,
                created_at=datetime(2025, 1, 15, 12, tzinfo=UTC),
            )
        )
        return user_by_username(connection, username)


def start_session(engine: Engine, user: User) -> tuple[str, str]:
    """A signed session cookie for ``user`` (signed with SECRET) and the session's CSRF token."""
    with write_transaction(engine) as connection:
        raw = create_session(connection, user, ip="127.0.0.1", user_agent="tests")
        session = load_session(connection, raw)
    assert session is not None
    return CookieSigner(SECRET).sign(raw), session.csrf_token


def client_as(app: FastAPI, engine: Engine, user: User | None) -> tuple[TestClient, str]:
    """A client of ``app`` (made with SECRET as its secret_key), logged in as ``user`` unless
    None, and the CSRF token its forms carry."""
    client = TestClient(app, follow_redirects=False)
    if user is None:
        match = CSRF.search(client.get("/login").text)
        assert match
        return client, match.group(1)
    cookie, token = start_session(engine, user)
    client.cookies.set(SESSION_COOKIE, cookie)
    return client, token
