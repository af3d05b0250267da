"""Login sessions: a random id in a signed, HttpOnly, SameSite cookie, revocable on the server.

The cookie carries the session id signed with the site secret (itsdangerous); the database keeps
only the id's SHA-256, with an expiry, the CSRF token for the session's forms, and a revocation
time. Logging in always creates a new session (no fixation); logging out, changing the password
or suspending a user revokes sessions on the server, whatever cookies are still around.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from papertide.accounts.users import User, user_by_id
from papertide.db.schema import sessions, site_secrets

SESSION_LIFETIME = timedelta(days=30)
TOUCH_EVERY = timedelta(minutes=10)  # last_seen_at is refreshed at most this often


@dataclass(frozen=True, slots=True)
class Session:
    user: User
    csrf_token: str
    id_hash: str
    last_seen_at: datetime


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def site_secret(connection: Connection, configured: str) -> str:
    """The secret that signs cookies: the ``secret_key`` setting, else one generated once and
    kept in the database so that every web worker shares it."""
    if configured:
        return configured
    row = connection.execute(
        select(site_secrets.c.value).where(site_secrets.c.name == "secret_key")
    ).first()
    if row is not None:
        return str(row.value)
    try:
        with connection.begin_nested():
            connection.execute(
                insert(site_secrets).values(
                    name="secret_key", value=secrets.token_urlsafe(48), created_at=datetime.now(UTC)
                )
            )
    except IntegrityError:
        pass  # another worker generated it first; use theirs
    return site_secret(connection, configured)


class CookieSigner:
    def __init__(self, secret: str) -> None:
        self._serializer = URLSafeSerializer(secret, salt="papertide.session")

    def sign(self, session_id: str) -> str:
        return self._serializer.dumps(session_id)

    def unsign(self, cookie: str) -> str | None:
        try:
            value = self._serializer.loads(cookie)
        except BadSignature:
            return None
        return value if isinstance(value, str) else None


def create_session(
    connection: Connection,
    user: User,
    *,
    ip: str | None,
    user_agent: str | None,
    now: datetime | None = None,
) -> str:
    """A new session for ``user``; returns the raw id for the cookie (never stored)."""
    now = now or datetime.now(UTC)
    raw = secrets.token_urlsafe(32)
    connection.execute(
        insert(sessions).values(
            id_hash=digest(raw),
            user_id=user.id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            expires_at=now + SESSION_LIFETIME,
            last_seen_at=now,
            ip=(ip or "")[:64] or None,
            user_agent=(user_agent or "")[:500] or None,
        )
    )
    return raw


def load_session(connection: Connection, raw: str, now: datetime | None = None) -> Session | None:
    """The live session for a raw id, or None (unknown, expired, revoked, user suspended)."""
    now = now or datetime.now(UTC)
    row = connection.execute(select(sessions).where(sessions.c.id_hash == digest(raw))).first()
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return None
    user = user_by_id(connection, row.user_id)
    if user is None or not user.active:
        return None
    return Session(
        user=user, csrf_token=row.csrf_token, id_hash=row.id_hash, last_seen_at=row.last_seen_at
    )


def touch_session(connection: Connection, session: Session, now: datetime) -> None:
    """Refresh last_seen_at (at most every TOUCH_EVERY, so reads stay reads)."""
    if now - session.last_seen_at > TOUCH_EVERY:
        connection.execute(
            update(sessions).where(sessions.c.id_hash == session.id_hash).values(last_seen_at=now)
        )


def revoke_session(connection: Connection, raw: str, now: datetime | None = None) -> None:
    connection.execute(
        update(sessions)
        .where(sessions.c.id_hash == digest(raw), sessions.c.revoked_at.is_(None))
        .values(revoked_at=now or datetime.now(UTC))
    )


def revoke_user_sessions(
    connection: Connection, user: User, *, keep: str | None = None, now: datetime | None = None
) -> None:
    """Revoke every session of ``user`` (but the one whose raw id is ``keep``)."""
    statement = update(sessions).where(
        sessions.c.user_id == user.id, sessions.c.revoked_at.is_(None)
    )
    if keep is not None:
        statement = statement.where(sessions.c.id_hash != digest(keep))
    connection.execute(statement.values(revoked_at=now or datetime.now(UTC)))
