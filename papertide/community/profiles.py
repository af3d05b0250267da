"""A user's public page: who they are, what they wrote, what they upvoted (when public)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select

from papertide.accounts.users import User, user_by_username
from papertide.community.comments import Comment, user_comments
from papertide.community.papers import visible
from papertide.db.schema import papers, votes

PROFILE_ITEMS = 50  # comments and upvoted papers shown, newest first


@dataclass(frozen=True, slots=True)
class UpvotedPaper:
    arxiv_id: str
    title: str
    voted_at: datetime


@dataclass(frozen=True, slots=True)
class Profile:
    user: User
    comments: list[Comment]
    upvoted: list[UpvotedPaper] | None  # None: the user keeps their votes private
    is_self: bool


def profile(connection: Connection, username: str, viewer: User | None) -> Profile:
    """The page of ``username`` as ``viewer`` sees it; NotFound for unknown users."""
    user = user_by_username(connection, username)
    is_self = viewer is not None and viewer.id == user.id
    upvoted = upvoted_papers(connection, user) if user.votes_public or is_self else None
    return Profile(user, user_comments(connection, user.id, PROFILE_ITEMS), upvoted, is_self)


def upvoted_papers(
    connection: Connection, user: User, limit: int = PROFILE_ITEMS
) -> list[UpvotedPaper]:
    rows = connection.execute(
        select(papers.c.arxiv_id, papers.c.title, votes.c.created_at)
        .select_from(votes.join(papers, papers.c.id == votes.c.paper_id))
        .where(votes.c.user_id == user.id, visible())
        .order_by(votes.c.created_at.desc(), papers.c.arxiv_id)
        .limit(limit)
    )
    return [UpvotedPaper(arxiv_id, title, at) for arxiv_id, title, at in rows]
