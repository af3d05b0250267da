"""The audit log: who did what to what, for moderation and administration.

Every moderator or admin action (hiding a paper, deleting someone else's comment, suspending a
user, deciding a submission or an authorship claim) is recorded in the same transaction as the
action itself, so the log never misses one. Admins read it at ``/admin/audit``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select

from papertide.accounts.users import User
from papertide.db.schema import audit_log, users


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str | None  # username; None when the account is gone
    action: str
    target: str
    details: dict[str, Any]


def record(
    connection: Connection,
    actor: User | None,
    action: str,
    target: str,
    details: dict[str, Any] | None = None,
) -> None:
    """Log ``action`` (e.g. "paper.hide") on ``target`` (e.g. "paper:2505.01234")."""
    connection.execute(
        insert(audit_log).values(
            at=datetime.now(UTC),
            actor_id=actor.id if actor else None,
            action=action,
            target=target,
            details=details or {},
        )
    )


def recent(
    connection: Connection, limit: int = 100, offset: int = 0
) -> tuple[list[AuditEntry], int]:
    """The newest entries first, and how many there are in all."""
    rows = connection.execute(
        select(
            audit_log.c.id,
            audit_log.c.at,
            users.c.username,
            audit_log.c.action,
            audit_log.c.target,
            audit_log.c.details,
        )
        .outerjoin(users, users.c.id == audit_log.c.actor_id)
        .order_by(audit_log.c.at.desc(), audit_log.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    total = connection.execute(select(func.count()).select_from(audit_log)).scalar_one()
    entries = [
        AuditEntry(r.id, r.at, r.username, r.action, r.target, dict(r.details or {})) for r in rows
    ]
    return entries, int(total)
