"""Password resets by emailed link: a single-use token valid for an hour."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, insert, select, update

from papertide.accounts.sessions import digest, revoke_user_sessions
from papertide.accounts.users import User, set_password, user_by_email, user_by_id
from papertide.db.schema import password_resets
from papertide.errors import InvalidInput

RESET_LIFETIME = timedelta(hours=1)


def start_reset(connection: Connection, email: str) -> tuple[User, str] | None:
    """(user, raw token) for the account with ``email``, or None when there is none.

    The caller says the same thing either way, so the form does not reveal who has an account.
    """
    user = user_by_email(connection, email)
    if user is None or not user.active:
        return None
    raw = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    connection.execute(
        insert(password_resets).values(
            token_hash=digest(raw), user_id=user.id, created_at=now, expires_at=now + RESET_LIFETIME
        )
    )
    return user, raw


def finish_reset(connection: Connection, raw: str, new_password: str) -> User:
    """Set the new password, spend the token and log the user out everywhere."""
    now = datetime.now(UTC)
    row = connection.execute(
        select(password_resets).where(password_resets.c.token_hash == digest(raw))
    ).first()
    if row is None or row.used_at is not None or row.expires_at <= now:
        raise InvalidInput("this reset link is invalid or has expired; ask for a new one")
    user = user_by_id(connection, row.user_id)
    if user is None or not user.active:
        raise InvalidInput("this reset link is invalid or has expired; ask for a new one")
    set_password(connection, user, new_password)
    connection.execute(
        update(password_resets)
        .where(password_resets.c.user_id == user.id, password_resets.c.used_at.is_(None))
        .values(used_at=now)
    )
    revoke_user_sessions(connection, user, now=now)
    return user
