"""Moderation: hiding papers, suspending people, and the queue of things waiting for a decision.

Who may do what (least privilege; docs/moderation.md has the whole table):

- moderators and administrators hide and unhide papers, decide pending submissions
  (:func:`papertide.submissions.decide_submission`) and authorship claims
  (:func:`papertide.claims.decide_claim`), and delete any comment
  (:func:`papertide.community.comments.delete_comment`);
- moderators suspend ordinary users only; administrators suspend anyone but themselves;
- every such action is written to the audit log (:mod:`papertide.audit`) in its own
  transaction, so the log never misses one.

A hidden paper (``papers.hidden_at``) is left out of every list and answers 404 to everyone but
moderators; suspending someone revokes their sessions, so they are logged out at once, and they
cannot log in again (nor use their API tokens) until unsuspended.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, select, update

from papertide import audit, claims, submissions
from papertide.accounts import sessions
from papertide.accounts.users import User, set_suspended, user_by_username
from papertide.catalog.ids import parse_arxiv_id
from papertide.db.schema import papers, users
from papertide.errors import Conflict, InvalidInput, NotFound, PermissionDenied

MAX_REASON = 500


@dataclass(frozen=True, slots=True)
class HiddenPaper:
    arxiv_id: str
    title: str
    hidden_at: datetime


@dataclass(frozen=True, slots=True)
class SuspendedUser:
    username: str
    suspended_at: datetime


@dataclass(frozen=True, slots=True)
class Queue:
    """What the moderation page shows."""

    submissions: list[submissions.SubmissionLine]
    claims: list[claims.Claim]
    hidden: list[HiddenPaper]
    suspended: list[SuspendedUser]


def require_moderator(user: User) -> None:
    if not (user.can_moderate and user.active):
        raise PermissionDenied("only moderators may do this")


def _paper(connection: Connection, arxiv_id: str) -> tuple[int, str, datetime | None]:
    try:
        key = parse_arxiv_id(arxiv_id).id
    except InvalidInput:
        raise NotFound(f"no paper {arxiv_id!r}: that is not an arXiv id") from None
    row = connection.execute(
        select(papers.c.id, papers.c.hidden_at).where(papers.c.arxiv_id == key)
    ).first()
    if row is None:
        raise NotFound(f"no paper {key} in this catalog")
    return row.id, key, row.hidden_at


def hide_paper(
    connection: Connection,
    moderator: User,
    arxiv_id: str,
    reason: str | None = None,
    now: datetime | None = None,
) -> str:
    """Hide a paper from every list and its page; returns its arXiv id. Audited."""
    require_moderator(moderator)
    paper_id, key, hidden_at = _paper(connection, arxiv_id)
    if hidden_at is not None:
        raise Conflict(f"paper {key} is already hidden")
    reason = (reason or "").strip()
    if len(reason) > MAX_REASON:
        raise InvalidInput(f"a reason has at most {MAX_REASON} characters")
    connection.execute(
        update(papers).where(papers.c.id == paper_id).values(hidden_at=now or datetime.now(UTC))
    )
    audit.record(connection, moderator, "paper.hide", f"paper:{key}", {"reason": reason or None})
    return key


def unhide_paper(connection: Connection, moderator: User, arxiv_id: str) -> str:
    """Show a hidden paper again; returns its arXiv id. Audited."""
    require_moderator(moderator)
    paper_id, key, hidden_at = _paper(connection, arxiv_id)
    if hidden_at is None:
        raise Conflict(f"paper {key} is not hidden")
    connection.execute(update(papers).where(papers.c.id == paper_id).values(hidden_at=None))
    audit.record(connection, moderator, "paper.unhide", f"paper:{key}")
    return key


def may_suspend(actor: User | None, target: User) -> bool:
    """Moderators suspend ordinary users; administrators anyone but themselves."""
    if actor is None or not actor.active or not actor.can_moderate or actor.id == target.id:
        return False
    return actor.is_admin or not target.can_moderate


def suspend_user(
    connection: Connection,
    actor: User,
    username: str,
    suspend: bool = True,
    now: datetime | None = None,
) -> User:
    """Suspend (revoking every session) or unsuspend ``username``. Audited."""
    require_moderator(actor)
    target = user_by_username(connection, username)
    if target.id == actor.id:
        raise InvalidInput("you cannot suspend or unsuspend yourself")
    if not may_suspend(actor, target):
        raise PermissionDenied(
            f"only administrators may suspend or unsuspend {target.role.value}s "
            f"such as {target.username}"
        )
    if suspend == (not target.active):
        state = "suspended" if suspend else "not suspended"
        raise Conflict(f"{target.username} is already {state}")
    now = now or datetime.now(UTC)
    set_suspended(connection, target, suspend, now)
    if suspend:
        sessions.revoke_user_sessions(connection, target, now=now)
    action = "user.suspend" if suspend else "user.unsuspend"
    audit.record(connection, actor, action, f"user:{target.username}")
    return user_by_username(connection, username)


def hidden_papers(connection: Connection, limit: int = 200) -> list[HiddenPaper]:
    rows = connection.execute(
        select(papers.c.arxiv_id, papers.c.title, papers.c.hidden_at)
        .where(papers.c.hidden_at.is_not(None))
        .order_by(papers.c.hidden_at.desc())
        .limit(limit)
    )
    return [HiddenPaper(*row) for row in rows]


def suspended_users(connection: Connection, limit: int = 200) -> list[SuspendedUser]:
    rows = connection.execute(
        select(users.c.username, users.c.suspended_at)
        .where(users.c.suspended_at.is_not(None))
        .order_by(users.c.suspended_at.desc())
        .limit(limit)
    )
    return [SuspendedUser(*row) for row in rows]


def queue(connection: Connection, moderator: User) -> Queue:
    """Pending submissions and claims (oldest first), hidden papers and suspended users."""
    require_moderator(moderator)
    return Queue(
        submissions=submissions.pending_submissions(connection),
        claims=claims.pending_claims(connection),
        hidden=hidden_papers(connection),
        suspended=suspended_users(connection),
    )


@dataclass(frozen=True, slots=True)
class ProfileExtra:
    """What a profile page adds for this module: verified authorship, a suspend button."""

    authorships: list[claims.Authorship]
    can_suspend: bool  # the viewer may suspend or unsuspend this user
    submissions: list[submissions.SubmissionLine]


def profile_extra(connection: Connection, user: User, viewer: User | None) -> ProfileExtra:
    everything = viewer is not None and (viewer.id == user.id or viewer.can_moderate)
    return ProfileExtra(
        claims.verified_authorships(connection, user),
        may_suspend(viewer, user),
        submissions.profile_submissions(connection, user, everything=everything),
    )
