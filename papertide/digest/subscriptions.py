"""Subscribers: double opt-in, preferences, one-click unsubscribe, bounces.

Anyone can subscribe with an email address alone; nothing but the confirmation email is sent
until they follow its signed link (valid :data:`CONFIRM_MAX_AGE` seconds). Each subscription has
a random ``token``: every digest carries it in its links to the preferences page, the preview
and the one-click unsubscribe, so none of them needs a login. A subscription made while logged in
with the account's own address is tied to the account and can carry "picked for you".

Subscribing again with a known address never reveals whether it is subscribed: the caller
answers the same way; this module only says which email to send (a new confirmation, or the
link to the preferences of an active subscription), and sends at most one per
:data:`RESEND_AFTER` per address.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import Connection, insert, select, update

from papertide.accounts.users import normalize_email
from papertide.db.schema import subscriptions
from papertide.errors import InvalidInput, NotFound
from papertide.personal.interests import FIELDS, RuleSet, make_interests

CONFIRM_MAX_AGE = 7 * 24 * 3600
RESEND_AFTER = timedelta(minutes=10)
FREQUENCIES = ("daily", "weekly")
MIN_SIZE, MAX_SIZE = 3, 30


class State(StrEnum):
    UNCONFIRMED = "unconfirmed"
    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCING = "bouncing"


class Reply(StrEnum):
    """Which email a subscribe request calls for."""

    CONFIRM = "confirm"  # new or not yet confirmed: the confirmation link
    MANAGE = "manage"  # already active: the link to its preferences
    NONE = "none"  # one was sent moments ago: nothing


@dataclass(frozen=True, slots=True)
class Subscription:
    id: int
    email: str
    user_id: int | None
    token: str
    frequency: str
    size: int
    personal: bool
    include: RuleSet
    exclude: RuleSet
    created_at: datetime
    confirm_sent_at: datetime | None
    confirmed_at: datetime | None
    unsubscribed_at: datetime | None
    bounces: int
    bouncing_at: datetime | None
    last_error: str | None

    @property
    def state(self) -> State:
        if self.unsubscribed_at is not None:
            return State.UNSUBSCRIBED
        if self.confirmed_at is None:
            return State.UNCONFIRMED
        if self.bouncing_at is not None:
            return State.BOUNCING
        return State.ACTIVE

    @property
    def active(self) -> bool:
        return self.state is State.ACTIVE


def _rules(raw: dict[str, Any] | None, side: str) -> RuleSet:
    values = (raw or {}).get(side, {})
    return RuleSet(**{k: tuple(v) for k, v in values.items() if k in FIELDS})


def from_row(row: Any) -> Subscription:
    return Subscription(
        id=row.id,
        email=row.email,
        user_id=row.user_id,
        token=row.token,
        frequency=row.frequency,
        size=row.size,
        personal=row.personal,
        include=_rules(row.rules, "include"),
        exclude=_rules(row.rules, "exclude"),
        created_at=row.created_at,
        confirm_sent_at=row.confirm_sent_at,
        confirmed_at=row.confirmed_at,
        unsubscribed_at=row.unsubscribed_at,
        bounces=row.bounces,
        bouncing_at=row.bouncing_at,
        last_error=row.last_error,
    )


def _one(connection: Connection, condition: Any) -> Subscription | None:
    row = connection.execute(select(subscriptions).where(condition)).first()
    return None if row is None else from_row(row)


def by_token(connection: Connection, token: str) -> Subscription:
    found = _one(connection, subscriptions.c.token == token) if len(token) <= 64 else None
    if found is None:
        raise NotFound("no subscription has this link; it may have been deleted")
    return found


def by_email(connection: Connection, email: str) -> Subscription | None:
    return _one(connection, subscriptions.c.email == email.strip().lower())


def for_user(connection: Connection, user_id: int) -> Subscription | None:
    return _one(connection, subscriptions.c.user_id == user_id)


def subscribe(
    connection: Connection,
    email: str,
    *,
    size: int,
    frequency: str = "daily",
    user_id: int | None = None,
    now: datetime | None = None,
) -> tuple[Subscription, Reply]:
    """Record a subscribe request for ``email``; which email to send in answer.

    ``user_id``: the logged-in account whose own address this is (ties the subscription to it).
    A subscription that was unsubscribed (or is bouncing) needs a new confirmation.
    """
    now = now or datetime.now(UTC)
    email = normalize_email(email)
    _check_frequency(frequency)
    found = by_email(connection, email)
    if found is None:
        new_id = connection.execute(
            insert(subscriptions)
            .values(
                email=email,
                user_id=user_id,
                token=secrets.token_urlsafe(32),
                frequency=frequency,
                size=size,
                personal=True,
                rules={},
                created_at=now,
                confirm_sent_at=now,
            )
            .returning(subscriptions.c.id)
        ).scalar_one()
        created = _one(connection, subscriptions.c.id == new_id)
        assert created is not None
        return created, Reply.CONFIRM
    changes: dict[str, Any] = {}
    if user_id is not None and found.user_id is None:
        changes["user_id"] = user_id
    if found.state in (State.UNSUBSCRIBED, State.BOUNCING):
        changes.update(confirmed_at=None, unsubscribed_at=None)
    recent = found.confirm_sent_at is not None and now - found.confirm_sent_at < RESEND_AFTER
    reply = Reply.MANAGE if found.active else Reply.CONFIRM
    if recent:
        reply = Reply.NONE
    else:
        changes["confirm_sent_at"] = now
    if changes:
        connection.execute(
            update(subscriptions).where(subscriptions.c.id == found.id).values(**changes)
        )
    refreshed = _one(connection, subscriptions.c.id == found.id)
    assert refreshed is not None
    return refreshed, reply


def _serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt="papertide-subscription-confirm")


def confirmation_token(secret: str, subscription: Subscription) -> str:
    """The signed part of the confirmation link (the address is in it: a changed address
    invalidates old links)."""
    return str(_serializer(secret).dumps([subscription.id, subscription.email]))


def read_confirmation(secret: str, signed: str) -> tuple[int, str]:
    """(subscription id, address) of a confirmation link; InvalidInput when it is expired or
    not one of ours."""
    try:
        sub_id, email = _serializer(secret).loads(signed, max_age=CONFIRM_MAX_AGE)
        return int(sub_id), str(email)
    except SignatureExpired:
        raise InvalidInput(
            "this confirmation link has expired; subscribe again to get a new one"
        ) from None
    except (BadSignature, ValueError, TypeError):
        raise InvalidInput(
            "this confirmation link is not valid; check that it was copied whole"
        ) from None


def confirm(
    connection: Connection, secret: str, signed: str, now: datetime | None = None
) -> Subscription:
    """Confirm the subscription a link names; confirming twice is harmless."""
    sub_id, email = read_confirmation(secret, signed)
    found = _one(connection, subscriptions.c.id == sub_id)
    if found is None or found.email != email:
        raise NotFound("this confirmation link belongs to a subscription that no longer exists")
    if found.confirmed_at is None or found.unsubscribed_at is not None:
        connection.execute(
            update(subscriptions)
            .where(subscriptions.c.id == found.id)
            .values(
                confirmed_at=now or datetime.now(UTC),
                unsubscribed_at=None,
                bounces=0,
                bouncing_at=None,
                last_error=None,
            )
        )
    confirmed = _one(connection, subscriptions.c.id == found.id)
    assert confirmed is not None
    return confirmed


def unsubscribe(connection: Connection, token: str, now: datetime | None = None) -> Subscription:
    """Stop all mail to the subscription at once (unsubscribing twice is harmless)."""
    found = by_token(connection, token)
    if found.unsubscribed_at is None:
        connection.execute(
            update(subscriptions)
            .where(subscriptions.c.id == found.id)
            .values(unsubscribed_at=now or datetime.now(UTC))
        )
    return by_token(connection, token)


def _check_frequency(frequency: str) -> None:
    if frequency not in FREQUENCIES:
        raise InvalidInput(f"frequency {frequency!r} is not one of {', '.join(FREQUENCIES)}")


def update_preferences(
    connection: Connection,
    subscription: Subscription,
    *,
    frequency: str,
    size: int,
    personal: bool,
    include: dict[str, list[str]],
    exclude: dict[str, list[str]],
) -> Subscription:
    """Change what the subscription gets; InvalidInput names the field at fault."""
    _check_frequency(frequency)
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise InvalidInput(f"papers per section must be {MIN_SIZE} to {MAX_SIZE}, not {size}")
    checked = make_interests(
        topics=[],
        include=include,
        exclude=exclude,
        threshold=0.0,
        trending_weight=0.3,
        window_days=7,
    )
    connection.execute(
        update(subscriptions)
        .where(subscriptions.c.id == subscription.id)
        .values(
            frequency=frequency,
            size=size,
            personal=personal,
            rules={"include": asdict(checked.include), "exclude": asdict(checked.exclude)},
        )
    )
    return by_token(connection, subscription.token)


def record_delivery(connection: Connection, subscription_id: int) -> None:
    """A digest was accepted: permanent refusals no longer count in a row."""
    connection.execute(
        update(subscriptions)
        .where(subscriptions.c.id == subscription_id, subscriptions.c.bounces > 0)
        .values(bounces=0, last_error=None)
    )


def record_bounce(
    connection: Connection, subscription_id: int, error: str, limit: int, now: datetime
) -> bool:
    """Count a permanent refusal; True when the subscription has now stopped (bouncing)."""
    connection.execute(
        update(subscriptions)
        .where(subscriptions.c.id == subscription_id)
        .values(bounces=subscriptions.c.bounces + 1, last_error=error[:1000])
    )
    stopped = connection.execute(
        update(subscriptions)
        .where(
            subscriptions.c.id == subscription_id,
            subscriptions.c.bounces >= limit,
            subscriptions.c.bouncing_at.is_(None),
        )
        .values(bouncing_at=now)
    )
    return stopped.rowcount > 0
