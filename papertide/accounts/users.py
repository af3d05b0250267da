"""Users: sign-up rules, lookups, roles, passwords, suspension."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from papertide.accounts.passwords import (
    check_password_rules,
    hash_password,
    needs_rehash,
    verify_password,
)
from papertide.db.schema import users
from papertide.errors import Conflict, InvalidInput, NotFound

USERNAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{1,38}[A-Za-z0-9]")
EMAIL_RE = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")
RESERVED = {
    "admin", "administrator", "root", "papertide", "moderator", "support", "api", "static",
    "login", "logout", "signup", "settings", "users", "papers", "me", "system",
}  # fmt: skip


class Role(StrEnum):
    USER = "user"
    MODERATOR = "moderator"
    ADMIN = "admin"

    @property
    def can_moderate(self) -> bool:
        return self in (Role.MODERATOR, Role.ADMIN)


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    email: str
    role: Role
    display_name: str | None
    votes_public: bool
    suspended_at: datetime | None
    created_at: datetime

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def can_moderate(self) -> bool:
        return self.role.can_moderate

    @property
    def active(self) -> bool:
        return self.suspended_at is None


_COLUMNS = (
    users.c.id,
    users.c.username,
    users.c.email,
    users.c.role,
    users.c.display_name,
    users.c.votes_public,
    users.c.suspended_at,
    users.c.created_at,
)


def _user(row: object) -> User:
    values = dict(row._mapping)  # type: ignore[attr-defined]
    values["role"] = Role(values["role"])
    return User(**values)


def normalize_username(username: str) -> str:
    username = username.strip()
    if not USERNAME_RE.fullmatch(username):
        raise InvalidInput(
            "a username has 3 to 40 letters, digits, '-' or '_', "
            "and starts and ends with a letter or digit"
        )
    if username.lower() in RESERVED:
        raise InvalidInput(f"the username {username!r} is reserved")
    return username


def normalize_email(email: str) -> str:
    email = email.strip().lower()
    if len(email) > 320 or not EMAIL_RE.fullmatch(email):
        raise InvalidInput(f"{email!r} is not an email address")
    return email


def create_user(
    connection: Connection,
    username: str,
    email: str,
    password: str,
    *,
    role: Role = Role.USER,
    now: datetime | None = None,
) -> User:
    """Create an account; Conflict when the username or email is taken (by the database)."""
    username = normalize_username(username)
    email = normalize_email(email)
    check_password_rules(password, username=username, email=email)
    values = {
        "username": username,
        "username_key": username.lower(),
        "email": email,
        "password_hash": hash_password(password),
        "role": role.value,
        "created_at": now or datetime.now(UTC),
    }
    try:
        with connection.begin_nested():
            connection.execute(insert(users).values(values))
    except IntegrityError:
        taken = connection.execute(
            select(users.c.username_key).where(users.c.username_key == username.lower())
        ).first()
        what = f"the username {username!r}" if taken else "an account with that email"
        raise Conflict(f"{what} already exists") from None
    return user_by_username(connection, username)


def user_by_username(connection: Connection, username: str) -> User:
    row = connection.execute(
        select(*_COLUMNS).where(users.c.username_key == username.strip().lower())
    ).first()
    if row is None:
        raise NotFound(f"no user {username!r}")
    return _user(row)


def user_by_id(connection: Connection, user_id: int) -> User | None:
    row = connection.execute(select(*_COLUMNS).where(users.c.id == user_id)).first()
    return None if row is None else _user(row)


def user_by_email(connection: Connection, email: str) -> User | None:
    row = connection.execute(
        select(*_COLUMNS).where(users.c.email == email.strip().lower())
    ).first()
    return None if row is None else _user(row)


def authenticate(connection: Connection, login: str, password: str) -> User | None:
    """The user whose username or email and password match, else None (same work either way)."""
    key = login.strip().lower()
    column = users.c.email if "@" in key else users.c.username_key
    row = connection.execute(select(*_COLUMNS, users.c.password_hash).where(column == key)).first()
    stored = row.password_hash if row is not None else None
    if not verify_password(stored, password) or row is None:
        return None
    user = user_by_id(connection, row.id)
    if user is not None and stored and needs_rehash(stored):
        set_password(connection, user, password)
    return user


def set_password(connection: Connection, user: User, password: str) -> None:
    check_password_rules(password, username=user.username, email=user.email)
    connection.execute(
        update(users).where(users.c.id == user.id).values(password_hash=hash_password(password))
    )


def record_login(connection: Connection, user: User, now: datetime) -> None:
    connection.execute(update(users).where(users.c.id == user.id).values(last_login_at=now))


def set_role(connection: Connection, user: User, role: Role) -> None:
    connection.execute(update(users).where(users.c.id == user.id).values(role=role.value))


def set_suspended(connection: Connection, user: User, suspended: bool, now: datetime) -> None:
    value = now if suspended else None
    connection.execute(update(users).where(users.c.id == user.id).values(suspended_at=value))


def count_users(connection: Connection) -> int:
    return int(connection.execute(select(func.count()).select_from(users)).scalar_one())
