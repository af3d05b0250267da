"""A user's marks on papers: "not interested" (dismissed) and "seen".

Dismissed papers never show in the user's feed again and count as negatives for the ranker.
Seen papers (opened, or delivered by a digest or a feed) are never recommended again: pages,
digests and feeds share this one record.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import Connection, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from papertide.accounts.users import User
from papertide.community.papers import paper_row
from papertide.db.schema import paper_marks

VIA = ("web", "digest", "feed", "api")


class Mark(StrEnum):
    DISMISSED = "dismissed"
    SEEN = "seen"


def _insert(connection: Connection) -> type[sqlite.Insert] | type[postgresql.Insert]:
    return postgresql.Insert if connection.dialect.name == "postgresql" else sqlite.Insert


def mark(
    connection: Connection, user: User, paper_ids: Iterable[int], kind: Mark, via: str = "web"
) -> None:
    """Mark papers (idempotent: the first mark's time and channel are kept)."""
    mark_for(connection, user.id, paper_ids, kind, via)


def mark_for(
    connection: Connection, user_id: int, paper_ids: Iterable[int], kind: Mark, via: str
) -> None:
    """:func:`mark` by user id (digests and feeds know the id, not the account)."""
    now = datetime.now(UTC)
    values = [
        {"user_id": user_id, "paper_id": p, "kind": kind.value, "via": via, "at": now}
        for p in dict.fromkeys(paper_ids)
    ]
    if values:
        connection.execute(_insert(connection)(paper_marks).on_conflict_do_nothing(), values)


def dismiss(connection: Connection, user: User, arxiv_id: str, via: str = "web") -> None:
    mark(connection, user, [paper_row(connection, arxiv_id).id], Mark.DISMISSED, via)


def undismiss(connection: Connection, user: User, arxiv_id: str) -> None:
    paper = paper_row(connection, arxiv_id)
    connection.execute(
        delete(paper_marks).where(
            paper_marks.c.user_id == user.id,
            paper_marks.c.paper_id == paper.id,
            paper_marks.c.kind == Mark.DISMISSED.value,
        )
    )


def marked_ids(connection: Connection, user_id: int, kind: Mark) -> set[int]:
    return set(
        connection.execute(
            select(paper_marks.c.paper_id).where(
                paper_marks.c.user_id == user_id, paper_marks.c.kind == kind.value
            )
        ).scalars()
    )


def has_mark(connection: Connection, user_id: int, paper_id: int, kind: Mark) -> bool:
    return (
        connection.execute(
            select(paper_marks.c.paper_id).where(
                paper_marks.c.user_id == user_id,
                paper_marks.c.paper_id == paper_id,
                paper_marks.c.kind == kind.value,
            )
        ).first()
        is not None
    )
