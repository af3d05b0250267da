"""API tokens for the JSON API's write endpoints: created, listed and revoked by their owner.

A token is shown once, at creation (``pt_`` + 40 random characters); the database keeps its
SHA-256 and a short prefix to recognise it in lists.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, insert, select, update

from papertide.accounts.sessions import digest
from papertide.accounts.users import User, user_by_id
from papertide.db.schema import api_tokens
from papertide.errors import InvalidInput, NotFound

TOKEN_PREFIX = "pt_"
MAX_NAME = 100


@dataclass(frozen=True, slots=True)
class ApiToken:
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None


def create_token(connection: Connection, user: User, name: str) -> tuple[ApiToken, str]:
    """A new token for ``user``: its record and the secret value, to show once."""
    name = " ".join(name.split())
    if not name or len(name) > MAX_NAME:
        raise InvalidInput(f"a token needs a name of 1 to {MAX_NAME} characters")
    raw = TOKEN_PREFIX + secrets.token_urlsafe(30)
    now = datetime.now(UTC)
    result = connection.execute(
        insert(api_tokens)
        .values(
            user_id=user.id,
            name=name,
            token_hash=digest(raw),
            prefix=raw[:10],
            created_at=now,
        )
        .returning(api_tokens.c.id)
    )
    return ApiToken(result.scalar_one(), name, raw[:10], now, None), raw


def list_tokens(connection: Connection, user: User) -> list[ApiToken]:
    rows = connection.execute(
        select(
            api_tokens.c.id,
            api_tokens.c.name,
            api_tokens.c.prefix,
            api_tokens.c.created_at,
            api_tokens.c.last_used_at,
        )
        .where(api_tokens.c.user_id == user.id, api_tokens.c.revoked_at.is_(None))
        .order_by(api_tokens.c.created_at.desc(), api_tokens.c.id.desc())
    )
    return [ApiToken(*row) for row in rows]


def revoke_token(connection: Connection, user: User, token_id: int) -> None:
    """Revoke one of ``user``'s tokens; another user's token is NotFound, like a missing one."""
    result = connection.execute(
        update(api_tokens)
        .where(
            api_tokens.c.id == token_id,
            api_tokens.c.user_id == user.id,
            api_tokens.c.revoked_at.is_(None),
        )
        .values(revoked_at=datetime.now(UTC))
    )
    if result.rowcount == 0:
        raise NotFound(f"no token {token_id}")


def user_for_token(connection: Connection, raw: str) -> User | None:
    """The active user owning the live token ``raw``, or None."""
    if not raw.startswith(TOKEN_PREFIX):
        return None
    row = connection.execute(
        select(api_tokens.c.id, api_tokens.c.user_id).where(
            api_tokens.c.token_hash == digest(raw), api_tokens.c.revoked_at.is_(None)
        )
    ).first()
    if row is None:
        return None
    user = user_by_id(connection, row.user_id)
    return user if user is not None and user.active else None
