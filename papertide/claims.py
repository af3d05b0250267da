"""Authorship claims: a person says "this author entry of this paper is me", a moderator agrees.

A logged-in user claims one author entry (paper + position in its author list) from the paper
page; the claim waits (*pending*) until a moderator approves or rejects it. An approved claim
makes the entry *verified*: the paper page shows a badge linking to the person's profile, and
their profile lists the paper under "verified authorship".

Rules: one claim per person per paper while it is pending or approved; an author entry has at
most one approved claim, which the deciding transaction checks with the entry's claims locked
(``SELECT .. FOR UPDATE`` on PostgreSQL; SQLite writers are serialised anyway). A rejected claim
cannot be made again (the database keeps one row per person and entry). Claims refer to the
position, not to a ``paper_authors`` row, because re-ingesting a paper rewrites its authors.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from papertide import audit
from papertide.accounts.users import User
from papertide.catalog.ids import parse_arxiv_id
from papertide.db.schema import author_claims, paper_authors, papers, users
from papertide.errors import Conflict, InvalidInput, NotFound, PermissionDenied


class ClaimStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Claim:
    id: int
    arxiv_id: str
    title: str
    author_position: int
    author_name: str | None  # None if the paper's author list no longer has that position
    username: str
    status: ClaimStatus
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None


@dataclass(frozen=True, slots=True)
class AuthorEntry:
    """One author of a paper, as the claims section of the paper page shows it."""

    position: int
    name: str
    verified_username: str | None  # whose approved claim verifies this entry
    viewer_status: ClaimStatus | None  # the viewer's own claim on this entry, if any


@dataclass(frozen=True, slots=True)
class PaperClaims:
    arxiv_id: str
    authors: tuple[AuthorEntry, ...]
    can_claim: bool  # logged in, with no pending or approved claim on this paper

    @property
    def verified(self) -> tuple[AuthorEntry, ...]:
        return tuple(a for a in self.authors if a.verified_username)


@dataclass(frozen=True, slots=True)
class Authorship:
    arxiv_id: str
    title: str
    author_name: str | None


_decider = aliased(users)


def _claims_select() -> Any:
    return (
        select(
            author_claims.c.id,
            papers.c.arxiv_id,
            papers.c.title,
            author_claims.c.author_position,
            paper_authors.c.name,
            users.c.username,
            author_claims.c.status,
            author_claims.c.created_at,
            _decider.c.username.label("decided_by"),
            author_claims.c.decided_at,
        )
        .select_from(author_claims)
        .join(papers, papers.c.id == author_claims.c.paper_id)
        .join(users, users.c.id == author_claims.c.user_id)
        .outerjoin(
            paper_authors,
            and_(
                paper_authors.c.paper_id == author_claims.c.paper_id,
                paper_authors.c.position == author_claims.c.author_position,
            ),
        )
        .outerjoin(_decider, _decider.c.id == author_claims.c.decided_by)
    )


def _claims(connection: Connection, condition: ColumnElement[bool], limit: int) -> list[Claim]:
    rows = connection.execute(
        _claims_select().where(condition).order_by(author_claims.c.created_at).limit(limit)
    )
    return [
        Claim(
            r.id,
            r.arxiv_id,
            r.title,
            r.author_position,
            r.name,
            r.username,
            ClaimStatus(r.status),
            r.created_at,
            r.decided_by,
            r.decided_at,
        )
        for r in rows
    ]


def _visible_paper(connection: Connection, arxiv_id: str, viewer: User | None) -> tuple[int, str]:
    """The paper's (id, arXiv id); NotFound if missing, or hidden from ``viewer``."""
    try:
        key = parse_arxiv_id(arxiv_id).id
    except InvalidInput:
        raise NotFound(f"no paper {arxiv_id!r}: that is not an arXiv id") from None
    row = connection.execute(
        select(papers.c.id, papers.c.hidden_at).where(papers.c.arxiv_id == key)
    ).first()
    hidden = row is not None and row.hidden_at is not None
    if row is None or (hidden and not (viewer is not None and viewer.can_moderate)):
        raise NotFound(f"no paper {key} in this catalog")
    return row.id, key


def claim_author(
    connection: Connection,
    user: User,
    arxiv_id: str,
    position: int,
    now: datetime | None = None,
) -> Claim:
    """``user`` claims to be author ``position`` (0-based) of the paper; pending until decided."""
    paper_id, key = _visible_paper(connection, arxiv_id, user)
    name = connection.execute(
        select(paper_authors.c.name).where(
            paper_authors.c.paper_id == paper_id, paper_authors.c.position == position
        )
    ).scalar()
    if name is None:
        raise InvalidInput(f"paper {key} has no author number {position + 1}")
    entry = and_(author_claims.c.paper_id == paper_id, author_claims.c.author_position == position)
    taken = connection.execute(
        select(author_claims.c.id).where(entry, author_claims.c.status == ClaimStatus.APPROVED)
    ).first()
    if taken is not None:
        raise Conflict(f"{name}, author of {key}, is already verified as someone else")
    open_claim = connection.execute(
        select(author_claims.c.id).where(
            author_claims.c.paper_id == paper_id,
            author_claims.c.user_id == user.id,
            author_claims.c.status.in_([ClaimStatus.PENDING, ClaimStatus.APPROVED]),
        )
    ).first()
    if open_claim is not None:
        raise Conflict(f"you have already claimed an author of {key}")
    try:
        with connection.begin_nested():
            claim_id = connection.execute(
                insert(author_claims)
                .values(
                    paper_id=paper_id,
                    author_position=position,
                    user_id=user.id,
                    status=ClaimStatus.PENDING.value,
                    created_at=now or datetime.now(UTC),
                )
                .returning(author_claims.c.id)
            ).scalar_one()
    except IntegrityError:
        raise Conflict(
            f"you already claimed {name} on {key} and a moderator turned it down"
        ) from None
    return _claims(connection, author_claims.c.id == claim_id, 1)[0]


def decide_claim(
    connection: Connection,
    moderator: User,
    claim_id: int,
    approve: bool,
    now: datetime | None = None,
) -> Claim:
    """Approve or reject a pending claim; at most one approved claim per author entry."""
    if not moderator.can_moderate:
        raise PermissionDenied("only moderators may decide authorship claims")
    row = connection.execute(
        select(author_claims.c.paper_id, author_claims.c.author_position).where(
            author_claims.c.id == claim_id
        )
    ).first()
    if row is None:
        raise NotFound(f"no authorship claim {claim_id}")
    entry = and_(
        author_claims.c.paper_id == row.paper_id,
        author_claims.c.author_position == row.author_position,
    )
    # Lock every claim on this author entry, so two moderators approving rival claims at the
    # same moment queue, and the second sees the first's approval.
    statuses = dict(
        connection.execute(
            select(author_claims.c.id, author_claims.c.status).where(entry).with_for_update()
        ).all()
    )
    claim = _claims(connection, author_claims.c.id == claim_id, 1)[0]
    if statuses[claim_id] != ClaimStatus.PENDING:
        raise Conflict(f"authorship claim {claim_id} was already {statuses[claim_id]}")
    if approve and ClaimStatus.APPROVED in statuses.values():
        raise Conflict(
            f"{claim.author_name or 'that author'} on {claim.arxiv_id} is already verified; "
            "reject this claim instead"
        )
    status = ClaimStatus.APPROVED if approve else ClaimStatus.REJECTED
    connection.execute(
        update(author_claims)
        .where(author_claims.c.id == claim_id)
        .values(status=status.value, decided_by=moderator.id, decided_at=now or datetime.now(UTC))
    )
    details = {
        "claim": claim_id,
        "user": claim.username,
        "author": claim.author_name,
        "position": claim.author_position,
    }
    action = "claim.approve" if approve else "claim.reject"
    audit.record(connection, moderator, action, f"paper:{claim.arxiv_id}", details)
    return _claims(connection, author_claims.c.id == claim_id, 1)[0]


def pending_claims(connection: Connection, limit: int = 200) -> list[Claim]:
    """Claims waiting for a moderator, oldest first."""
    return _claims(connection, author_claims.c.status == ClaimStatus.PENDING.value, limit)


def paper_claims(connection: Connection, arxiv_id: str, viewer: User | None) -> PaperClaims:
    """The paper's authors with their verified accounts and the viewer's own claims."""
    paper_id, key = _visible_paper(connection, arxiv_id, viewer)
    authors = connection.execute(
        select(paper_authors.c.position, paper_authors.c.name)
        .where(paper_authors.c.paper_id == paper_id)
        .order_by(paper_authors.c.position)
    ).all()
    verified = dict(
        connection.execute(
            select(author_claims.c.author_position, users.c.username)
            .join(users, users.c.id == author_claims.c.user_id)
            .where(
                author_claims.c.paper_id == paper_id,
                author_claims.c.status == ClaimStatus.APPROVED.value,
            )
        ).all()
    )
    mine: dict[int, ClaimStatus] = {}
    if viewer is not None:
        for position, status in connection.execute(
            select(author_claims.c.author_position, author_claims.c.status).where(
                author_claims.c.paper_id == paper_id, author_claims.c.user_id == viewer.id
            )
        ):
            mine[position] = ClaimStatus(status)
    entries = tuple(
        AuthorEntry(position, name, verified.get(position), mine.get(position))
        for position, name in authors
    )
    open_claim = any(s is not ClaimStatus.REJECTED for s in mine.values())
    return PaperClaims(key, entries, can_claim=viewer is not None and not open_claim)


def verified_authorships(connection: Connection, user: User) -> list[Authorship]:
    """The papers ``user`` is a verified author of (hidden ones left out), newest first."""
    rows = connection.execute(
        select(papers.c.arxiv_id, papers.c.title, paper_authors.c.name)
        .select_from(author_claims)
        .join(papers, papers.c.id == author_claims.c.paper_id)
        .outerjoin(
            paper_authors,
            and_(
                paper_authors.c.paper_id == author_claims.c.paper_id,
                paper_authors.c.position == author_claims.c.author_position,
            ),
        )
        .where(
            author_claims.c.user_id == user.id,
            author_claims.c.status == ClaimStatus.APPROVED.value,
            papers.c.hidden_at.is_(None),
        )
        .order_by(papers.c.published_at.desc().nulls_last(), papers.c.arxiv_id)
    )
    return [Authorship(r.arxiv_id, r.title, r.name) for r in rows]
