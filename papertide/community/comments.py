"""Comments: threaded, markdown with math, edited by their author for a while, soft-deleted.

Each comment stores its markdown source and the sanitized HTML rendered when it was written
(:mod:`papertide.community.markdown`), so pages never render markdown. Replies belong to the
same paper as their parent. A thread is read in one query and shown nested up to
:data:`MAX_DEPTH`; deeper replies are shown at that depth, after their parent, saying whom they
answer. A deleted comment keeps its place as "[deleted]" while replies hang from it and
disappears once nothing visible does.

Who may do what: the author may edit for ``settings.comment_edit_minutes`` after posting; the
author or a moderator may delete (a moderator deleting someone else's comment is written to the
audit log). To anyone else, another person's comment answers NotFound when they try to edit or
delete it, so it is never revealed as something they could act on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from markupsafe import Markup
from sqlalchemy import Connection, insert, select, update

from papertide import audit
from papertide.accounts.ratelimit import Limit
from papertide.accounts.users import User
from papertide.community.markdown import render_markdown, trusted_html
from papertide.community.papers import canonical_id, paper_row, visible
from papertide.db.schema import comments, papers, users
from papertide.errors import InvalidInput, NotFound, PermissionDenied

MAX_BODY_CHARS = 10_000
MAX_DEPTH = 4  # top-level comments have depth 0
POST_LIMIT = Limit(10, 600, "comments (at most 10 in 10 minutes)")


@dataclass(frozen=True, slots=True)
class Comment:
    id: int
    arxiv_id: str
    paper_title: str
    parent_id: int | None
    user_id: int
    author: str
    body_markdown: str
    body_html: str
    created_at: datetime
    edited_at: datetime | None
    deleted_at: datetime | None

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def html(self) -> Markup:
        """The rendered body for templates (empty once deleted)."""
        return Markup("") if self.deleted else trusted_html(self.body_html)


@dataclass(slots=True)
class CommentNode:
    """A comment as a thread shows it to one viewer."""

    comment: Comment
    depth: int
    ago: str
    can_edit: bool
    can_delete: bool
    reply_to: str | None = None  # the parent's author, when shown below its real depth
    replies: list[CommentNode] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Thread:
    arxiv_id: str
    roots: list[CommentNode]
    count: int  # comments not deleted
    edit_minutes: int


_COLUMNS = (
    comments.c.id,
    papers.c.arxiv_id,
    papers.c.title.label("paper_title"),
    comments.c.parent_id,
    comments.c.user_id,
    users.c.username.label("author"),
    comments.c.body_markdown,
    comments.c.body_html,
    comments.c.created_at,
    comments.c.edited_at,
    comments.c.deleted_at,
)
_FROM = comments.join(users, users.c.id == comments.c.user_id).join(
    papers, papers.c.id == comments.c.paper_id
)


def check_body(body: str) -> str:
    """The body without surrounding blank space; InvalidInput when empty or too long."""
    body = body.strip()
    if not body:
        raise InvalidInput("a comment cannot be empty")
    if len(body) > MAX_BODY_CHARS:
        raise InvalidInput(
            f"a comment has at most {MAX_BODY_CHARS:,} characters; this one has {len(body):,}"
        )
    return body


def render_body(connection: Connection, body: str) -> str:
    """Sanitized HTML for ``body``, with mentions of existing users linked."""

    def resolve(names: set[str]) -> Mapping[str, str]:
        rows = connection.execute(
            select(users.c.username_key, users.c.username).where(
                users.c.username_key.in_(sorted(names))
            )
        )
        return {key: username for key, username in rows}

    return render_markdown(body, resolve)


def post_comment(
    connection: Connection,
    user: User,
    arxiv_id: str,
    body: str,
    parent_id: int | None = None,
    now: datetime | None = None,
) -> Comment:
    """Add ``user``'s comment (a reply when ``parent_id`` is given) to the paper."""
    if not user.active:
        raise PermissionDenied(f"suspended accounts cannot comment (paper {arxiv_id})")
    body = check_body(body)
    paper = paper_row(connection, arxiv_id)
    if parent_id is not None:
        parent = connection.execute(
            select(comments.c.paper_id, comments.c.deleted_at).where(comments.c.id == parent_id)
        ).first()
        if parent is None or parent.paper_id != paper.id:
            raise NotFound(f"no comment {parent_id} on paper {paper.arxiv_id} to reply to")
        if parent.deleted_at is not None:
            raise InvalidInput(f"comment {parent_id} was deleted; it takes no more replies")
    new_id = connection.execute(
        insert(comments)
        .values(
            paper_id=paper.id,
            user_id=user.id,
            parent_id=parent_id,
            body_markdown=body,
            body_html=render_body(connection, body),
            created_at=now or datetime.now(UTC),
        )
        .returning(comments.c.id)
    ).scalar_one()
    return comment_by_id(connection, new_id)


def edit_comment(
    connection: Connection,
    user: User,
    comment_id: int,
    body: str,
    edit_minutes: int,
    now: datetime | None = None,
) -> Comment:
    """Replace the body of ``user``'s own comment, within ``edit_minutes`` of posting."""
    now = now or datetime.now(UTC)
    comment = _own_comment(connection, user, comment_id, "edit")
    if not _editable(comment, edit_minutes, now):
        raise PermissionDenied(
            f"comment {comment_id} can no longer be edited: comments can be edited for "
            f"{edit_minutes} minutes after posting"
        )
    body = check_body(body)
    connection.execute(
        update(comments)
        .where(comments.c.id == comment_id)
        .values(body_markdown=body, body_html=render_body(connection, body), edited_at=now)
    )
    return comment_by_id(connection, comment_id)


def delete_comment(
    connection: Connection, user: User, comment_id: int, now: datetime | None = None
) -> Comment:
    """Soft-delete a comment: its author or a moderator may (idempotent)."""
    comment = comment_by_id(connection, comment_id)
    if comment.user_id != user.id and not (user.can_moderate and user.active):
        raise _not_found(comment_id)
    if not user.active:
        raise PermissionDenied(f"suspended accounts cannot delete comment {comment_id}")
    if comment.deleted:
        return comment
    connection.execute(
        update(comments)
        .where(comments.c.id == comment_id)
        .values(deleted_at=now or datetime.now(UTC))
    )
    if comment.user_id != user.id:
        audit.record(
            connection,
            user,
            "comment.delete",
            f"comment:{comment_id}",
            {"paper": comment.arxiv_id, "author": comment.author},
        )
    return comment_by_id(connection, comment_id)


def comment_by_id(connection: Connection, comment_id: int) -> Comment:
    row = connection.execute(
        select(*_COLUMNS).select_from(_FROM).where(comments.c.id == comment_id)
    )
    found = row.first()
    if found is None:
        raise _not_found(comment_id)
    return _comment(found)


def user_comments(connection: Connection, user_id: int, limit: int = 50) -> list[Comment]:
    """A user's comments that are not deleted, newest first."""
    rows = connection.execute(
        select(*_COLUMNS)
        .select_from(_FROM)
        .where(comments.c.user_id == user_id, comments.c.deleted_at.is_(None), visible())
        .order_by(comments.c.created_at.desc(), comments.c.id.desc())
        .limit(limit)
    )
    return [_comment(row) for row in rows]


def thread(
    connection: Connection,
    arxiv_id: str,
    viewer: User | None,
    edit_minutes: int,
    now: datetime | None = None,
) -> Thread:
    """All comments on the paper, nested for display to ``viewer``, in one query."""
    now = now or datetime.now(UTC)
    key = canonical_id(arxiv_id)
    rows = connection.execute(
        select(*_COLUMNS)
        .select_from(_FROM)
        .where(papers.c.arxiv_id == key)
        .order_by(comments.c.created_at, comments.c.id)
    )
    nodes: dict[int, CommentNode] = {}
    roots: list[CommentNode] = []
    for row in rows:
        comment = _comment(row)
        node = _node(comment, viewer, edit_minutes, now)
        parent = nodes.get(comment.parent_id) if comment.parent_id is not None else None
        if parent is None:
            roots.append(node)
        else:
            _attach(nodes, parent, node)
        nodes[comment.id] = node
    roots = _prune(roots)
    count = sum(1 for node in nodes.values() if not node.comment.deleted)
    return Thread(key, roots, count, edit_minutes)


def ago(when: datetime, now: datetime) -> str:
    """``just now``, ``5 minutes ago``, ``3 hours ago``, ``2 days ago`` or ``May 1, 2025``."""
    seconds = int((now - when).total_seconds())
    if seconds < 60:
        return "just now"
    for unit, size, below in (
        ("minute", 60, 3600),
        ("hour", 3600, 86_400),
        ("day", 86_400, 2_592_000),
    ):
        if seconds < below:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'} ago"
    return f"{when:%b} {when.day}, {when.year}"


def _attach(nodes: Mapping[int, CommentNode], parent: CommentNode, node: CommentNode) -> None:
    """Nest ``node`` under ``parent``, or beside it once the thread is MAX_DEPTH deep."""
    holder = parent
    while holder.depth >= MAX_DEPTH:
        above = nodes.get(holder.comment.parent_id or 0)
        if above is None:
            break
        holder = above
    if holder is not parent:
        node.reply_to = parent.comment.author
    node.depth = min(holder.depth + 1, MAX_DEPTH)
    holder.replies.append(node)


def _prune(nodes: list[CommentNode]) -> list[CommentNode]:
    """Drop deleted comments that have nothing visible below them."""
    kept = []
    for node in nodes:
        node.replies = _prune(node.replies)
        if not node.comment.deleted or node.replies:
            kept.append(node)
    return kept


def _node(comment: Comment, viewer: User | None, edit_minutes: int, now: datetime) -> CommentNode:
    own = viewer is not None and viewer.active and viewer.id == comment.user_id
    moderator = viewer is not None and viewer.active and viewer.can_moderate
    live = not comment.deleted
    return CommentNode(
        comment=comment,
        depth=0,
        ago=ago(comment.created_at, now),
        can_edit=live and own and _editable(comment, edit_minutes, now),
        can_delete=live and (own or moderator),
    )


def _editable(comment: Comment, edit_minutes: int, now: datetime) -> bool:
    return not comment.deleted and now - comment.created_at <= timedelta(minutes=edit_minutes)


def _own_comment(connection: Connection, user: User, comment_id: int, action: str) -> Comment:
    comment = comment_by_id(connection, comment_id)
    if comment.user_id != user.id or comment.deleted:
        raise _not_found(comment_id)
    if not user.active:
        raise PermissionDenied(f"suspended accounts cannot {action} comment {comment_id}")
    return comment


def _not_found(comment_id: int) -> NotFound:
    return NotFound(f"no comment {comment_id}")


def _comment(row: Any) -> Comment:
    return Comment(**row._mapping)
