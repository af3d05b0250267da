"""The secret tokens of private "for you" feed URLs: created, looked up and revoked.

A user has at most one live token. Its value (``ft_`` + 40 random URL-safe characters) is shown
once, when it is made; the database keeps its SHA-256 (like API tokens and sessions) and a short
prefix its owner recognises it by. Making a new token revokes the old one, so "replace the link"
and "revoke the link" are the only two things to know. A revoked or unknown token is treated
exactly like a missing one.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, insert, select, update

from papertide.accounts.sessions import digest
from papertide.accounts.users import User, user_by_id
from papertide.db.schema import feed_tokens

TOKEN_PREFIX = "ft_"
SHOWN_PREFIX = 10  # characters of the token kept to show its owner which one is live


@dataclass(frozen=True, slots=True)
class FeedToken:
    id: int
    prefix: str
    created_at: datetime


def live_token(connection: Connection, user: User) -> FeedToken | None:
    """The user's live token (its prefix and age; the value itself is never kept)."""
    row = connection.execute(
        select(feed_tokens.c.id, feed_tokens.c.prefix, feed_tokens.c.created_at)
        .where(feed_tokens.c.user_id == user.id, feed_tokens.c.revoked_at.is_(None))
        .order_by(feed_tokens.c.created_at.desc(), feed_tokens.c.id.desc())
        .limit(1)
    ).first()
    return FeedToken(*row) if row is not None else None


def revoke_tokens(connection: Connection, user: User) -> int:
    """Revoke the user's live token(s); how many there were (0 is fine: nothing to do)."""
    result = connection.execute(
        update(feed_tokens)
        .where(feed_tokens.c.user_id == user.id, feed_tokens.c.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    return result.rowcount


def create_token(connection: Connection, user: User) -> tuple[FeedToken, str]:
    """A new token for ``user``, revoking any previous one: its record and its value."""
    revoke_tokens(connection, user)
    raw = TOKEN_PREFIX + secrets.token_urlsafe(30)
    now = datetime.now(UTC)
    token_id = connection.execute(
        insert(feed_tokens)
        .values(
            user_id=user.id,
            token_hash=digest(raw),
            prefix=raw[:SHOWN_PREFIX],
            created_at=now,
        )
        .returning(feed_tokens.c.id)
    ).scalar_one()
    return FeedToken(token_id, raw[:SHOWN_PREFIX], now), raw


def user_for_feed_token(connection: Connection, raw: str) -> User | None:
    """The active user whose live token is ``raw``, else None."""
    if not raw.startswith(TOKEN_PREFIX) or len(raw) > 100:
        return None
    user_id = connection.execute(
        select(feed_tokens.c.user_id).where(
            feed_tokens.c.token_hash == digest(raw), feed_tokens.c.revoked_at.is_(None)
        )
    ).scalar()
    if user_id is None:
        return None
    user = user_by_id(connection, user_id)
    return user if user is not None and user.active else None
