"""What the paper page shows of the community: the viewer's vote and the comment thread."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from papertide.accounts.users import User
from papertide.community.comments import Thread, thread
from papertide.community.votes import has_voted


@dataclass(frozen=True, slots=True)
class PaperCommunity:
    voted: bool
    thread: Thread


def paper_community(
    connection: Connection,
    viewer: User | None,
    arxiv_id: str,
    edit_minutes: int,
    now: datetime | None = None,
) -> PaperCommunity:
    """Two queries, however long the thread: the viewer's vote, and every comment."""
    return PaperCommunity(
        voted=has_voted(connection, viewer, arxiv_id),
        thread=thread(connection, arxiv_id, viewer, edit_minutes, now),
    )
