"""Upvotes: one per user per paper, enforced by the database.

``papers.upvotes`` is what the site shows and ranks by. It always equals
``imported_upvotes + (number of rows in votes for the paper)``: every vote or un-vote recomputes
it in the same transaction, after taking the paper's row lock, so concurrent voters queue on the
paper and each recount sees every vote committed before it (on SQLite, writers are serialized by
``BEGIN IMMEDIATE``). Voting twice or un-voting a paper one has not voted for changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from papertide.accounts.users import User
from papertide.community.papers import paper_row
from papertide.db.schema import papers, votes
from papertide.errors import PermissionDenied


@dataclass(frozen=True, slots=True)
class VoteState:
    """A paper's shown total after a vote, and whether the voter's vote is on it."""

    arxiv_id: str
    upvotes: int
    voted: bool


def upvote(
    connection: Connection, user: User, arxiv_id: str, now: datetime | None = None
) -> VoteState:
    """Add ``user``'s vote to the paper (idempotent)."""
    paper = _paper_for_vote(connection, user, arxiv_id)
    values = {"user_id": user.id, "paper_id": paper.id, "created_at": now or datetime.now(UTC)}
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    connection.execute(insert(votes).values(values).on_conflict_do_nothing())
    return VoteState(paper.arxiv_id, _recount(connection, paper), True)


def unvote(connection: Connection, user: User, arxiv_id: str) -> VoteState:
    """Take ``user``'s vote off the paper (idempotent)."""
    paper = _paper_for_vote(connection, user, arxiv_id)
    connection.execute(
        delete(votes).where(votes.c.user_id == user.id, votes.c.paper_id == paper.id)
    )
    return VoteState(paper.arxiv_id, _recount(connection, paper), False)


def voted_paper_ids(
    connection: Connection, user: User | None, arxiv_ids: Iterable[str]
) -> set[str]:
    """Which of ``arxiv_ids`` (canonical, as cards carry them) ``user`` has voted for."""
    wanted = sorted(set(arxiv_ids))
    if user is None or not wanted:
        return set()
    rows = connection.execute(
        select(papers.c.arxiv_id)
        .select_from(votes.join(papers, papers.c.id == votes.c.paper_id))
        .where(votes.c.user_id == user.id, papers.c.arxiv_id.in_(wanted))
    ).scalars()
    return set(rows)


def has_voted(connection: Connection, user: User | None, arxiv_id: str) -> bool:
    return arxiv_id in voted_paper_ids(connection, user, [arxiv_id])


def _paper_for_vote(connection: Connection, user: User, arxiv_id: str) -> Any:
    if not user.active:
        raise PermissionDenied(f"suspended accounts cannot vote (paper {arxiv_id})")
    return paper_row(connection, arxiv_id, lock=True)


def _recount(connection: Connection, paper: Any) -> int:
    count = (
        select(func.count())
        .select_from(votes)
        .where(votes.c.paper_id == paper.id)
        .scalar_subquery()
    )
    connection.execute(
        update(papers)
        .where(papers.c.id == paper.id)
        .values(upvotes=papers.c.imported_upvotes + count)
    )
    total = connection.execute(select(papers.c.upvotes).where(papers.c.id == paper.id))
    return int(total.scalar_one())
